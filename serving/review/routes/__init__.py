"""The review app's routes, one APIRouter per area; `create_review_app` includes them all."""

from serving.review.routes import accounts, audit, auth, cases, exports, facilities, queue

ROUTERS = (
    auth.router,
    queue.router,
    exports.router,
    cases.router,
    facilities.router,
    audit.router,
    accounts.router,
)

__all__ = ["ROUTERS"]
