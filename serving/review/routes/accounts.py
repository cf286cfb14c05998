"""User administration (admins): the accounts, creating one, unlocking, (de)activating."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from serving.review import users
from serving.review.deps import Admin, CheckedForm, Config, Id, base, render
from serving.review.errors import NotFound

router = APIRouter()
ACTIONS = ("unlock", "activate", "deactivate")


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, user: Admin, cfg: Config, error: str = ""):
    return render(request, "users.html", rows=users.list_users(cfg.store), error=error[:200])


@router.post("/users")
def users_create(request: Request, user: Admin, form: CheckedForm, cfg: Config):
    try:  # plain def: argon2 hashing
        users.create_user(
            cfg.store, form.get("username", ""), form.get("role", ""), form.get("password", "")
        )
    except ValueError as e:
        q = urlencode({"error": str(e)})
        return RedirectResponse(base(request) + f"/users?{q}", status_code=303)
    return RedirectResponse(base(request) + "/users?msg=user_created", status_code=303)


@router.post("/users/{user_id}/{action}")
def users_action(
    request: Request, user_id: Id, action: str, user: Admin, form: CheckedForm, cfg: Config
):
    rows = users.list_users(cfg.store)
    name = next((u["username"] for u in rows if u["id"] == user_id), None)
    if name is None or action not in ACTIONS:
        raise NotFound("not_found")
    if action == "unlock":
        users.unlock_user(cfg.store, name, actor=user.username)
    else:
        users.set_active(cfg.store, name, action == "activate", actor=user.username)
    return RedirectResponse(base(request) + "/users", status_code=303)
