"""The remembered claims in Redis, shared by every replica of the service (issue 14 item 4).

What the snapshot gives stays in each process (it is the model's, the same everywhere); what is
remembered after it lives in Redis, per key: per patient a hash of their visits, per facility and
visit type a hash of claims / cost per day, per clinician a sorted set of admission minutes, per
surgery performer a sorted set of procedure spans by day; per claim its entry (what it added
where, so a re-sent claim replaces its copy) and its history row (what the month's profiles and
the compiled plan read).

One Lua script per request (`exchange`) reads the keys the request's claims need and then, when
it remembers them, writes them, atomically: two replicas never interleave between the read and
the write, so of two copies of a claim sent to two replicas at once the later one sees the
earlier. The script refuses (without writing) when a claim was remembered in an earlier month
than the request's, and the caller falls back to the compiled plan. `epoch` counts late claims
remembered (earlier months than the one they were scored in): every replica recomputes its
month's profiles when it changes.
"""

from __future__ import annotations

import json

import pandas as pd

from features.online_state.keys import HISTORY_COLUMNS, KeyState, Proc, Visit, visit

_TIMES = ("admitted_at", "discharged_at")

EXCHANGE = r"""
local a = cjson.decode(ARGV[1])
local p = a.prefix
local function get(key)
  local v = redis.call('GET', key)
  if v then return cjson.decode(v) end
  return nil
end
local old = {}
for i, c in ipairs(a.claims) do
  local e = get(p .. 'c:' .. c.id)
  if e and a.month >= 0 and e.month < a.month then return cjson.encode({fallback = c.id}) end
  old[i] = e or false
end
local out = {persons = {}, facilities = {}, clinicians = {}, performers = {}, old = old}
for i, k in ipairs(a.persons) do out.persons[i] = redis.call('HGETALL', p .. 'p:' .. k) end
for i, f in ipairs(a.facilities) do
  out.facilities[i] = redis.call('HMGET', p .. 'f:' .. f[1], unpack(f[2]))
end
for i, k in ipairs(a.clinicians) do
  out.clinicians[i] = redis.call('ZRANGEBYSCORE', p .. 'k:' .. k[1], k[2], k[3], 'WITHSCORES')
end
for i, k in ipairs(a.performers) do
  out.performers[i] = redis.call('ZRANGEBYSCORE', p .. 'r:' .. k[1], k[2], k[3])
end
if a.remember then
  for i, c in ipairs(a.claims) do
    local e = old[i]
    if e then
      redis.call('HDEL', p .. 'p:' .. e.person, c.id)
      local f = p .. 'f:' .. e.fkey
      redis.call('HINCRBY', f, e.day .. ':n', -1)
      if e.cost ~= cjson.null then
        redis.call('HINCRBYFLOAT', f, e.day .. ':s', -e.cost)
        redis.call('HINCRBY', f, e.day .. ':k', -1)
      end
      if e.clin ~= cjson.null then redis.call('ZREM', p .. 'k:' .. e.clin, c.id) end
      for _, pr in ipairs(e.procs) do redis.call('ZREM', p .. 'r:' .. pr[1], pr[2]) end
    end
    local n = c.entry
    redis.call('HSET', p .. 'p:' .. n.person, c.id, c.visit)
    local f = p .. 'f:' .. n.fkey
    redis.call('HINCRBY', f, n.day .. ':n', 1)
    if n.cost ~= cjson.null then
      redis.call('HINCRBYFLOAT', f, n.day .. ':s', n.cost)
      redis.call('HINCRBY', f, n.day .. ':k', 1)
    end
    if n.clin ~= cjson.null then redis.call('ZADD', p .. 'k:' .. n.clin, n.min, c.id) end
    for _, pr in ipairs(n.procs) do redis.call('ZADD', p .. 'r:' .. pr[1], pr[3], pr[2]) end
    redis.call('SET', p .. 'c:' .. c.id, cjson.encode(n))
    redis.call('HSET', p .. 'rows', c.id, c.row)
    redis.call('SADD', p .. 'm:' .. n.month, c.id)  -- the month's index, for pruning
    redis.call('ZADD', p .. 'months', n.month, n.month)
    if n.late then redis.call('INCR', p .. 'epoch') end
  end
end
out.epoch = tonumber(redis.call('GET', p .. 'epoch') or '0')
return cjson.encode(out)
"""


# Forget the claims of months before ARGV[2] (the history window's start), at most ARGV[3] of
# them per call (a national month is millions of claims: Redis is never blocked long); returns
# how many are left to forget. A claim re-sent into a later month stays (its entry's month).
PRUNE = r"""
local p, cut, most = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local done = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', p .. 'months', '-inf', '(' .. cut)) do
  local idx = p .. 'm:' .. m
  for _, id in ipairs(redis.call('SPOP', idx, most - done)) do
    local v = redis.call('GET', p .. 'c:' .. id)
    local e = v and cjson.decode(v)
    if e and e.month < cut then
      redis.call('HDEL', p .. 'p:' .. e.person, id)
      local f = p .. 'f:' .. e.fkey
      if redis.call('HINCRBY', f, e.day .. ':n', -1) <= 0 then
        redis.call('HDEL', f, e.day .. ':n', e.day .. ':s', e.day .. ':k')
      elseif e.cost ~= cjson.null then
        redis.call('HINCRBYFLOAT', f, e.day .. ':s', -e.cost)
        redis.call('HINCRBY', f, e.day .. ':k', -1)
      end
      if e.clin ~= cjson.null then redis.call('ZREM', p .. 'k:' .. e.clin, id) end
      for _, pr in ipairs(e.procs) do redis.call('ZREM', p .. 'r:' .. pr[1], pr[2]) end
      redis.call('DEL', p .. 'c:' .. id)
      redis.call('HDEL', p .. 'rows', id)
    end
    done = done + 1
  end
  if redis.call('SCARD', idx) == 0 then redis.call('ZREM', p .. 'months', m) end
  if done >= most then break end
end
local left = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', p .. 'months', '-inf', '(' .. cut)) do
  left = left + redis.call('SCARD', p .. 'm:' .. m)
end
return left
"""


def _fkey(r: dict) -> str:
    return f"{r['facility_id']}|{r['visit_type']}"


def _row_json(r: dict, procs: list[Proc]) -> str:
    row = {c: r.get(c) for c in HISTORY_COLUMNS}
    row["_procs"] = [list(p) for p in procs]
    for c in _TIMES:
        row[c] = None if row[c] is None else row[c].isoformat()
    # what the month's price points and item statistics read of the lines (items.row_points)
    pts = [(x["item_key"], x["fund_unit_price"], x["quantity"], x["is_drug"])
           for x in r.get("_lines", ()) if x["item_key"] is not None]  # fmt: skip
    row["_points"] = pts
    return json.dumps(row)


def _row(text: str) -> dict:
    row = json.loads(text)
    for c in _TIMES:
        row[c] = None if row[c] is None else pd.Timestamp(row[c])
    pts = [[*p, None, None][:4] for p in row.pop("_points")]  # rows stored with two fields
    row["_lines"] = [{"item_key": k, "fund_unit_price": v, "quantity": q, "is_drug": d}
                     for k, v, q, d in pts]  # fmt: skip
    return row


class RedisStore:
    """The shared remembered claims of `url` (redis://...) under `prefix`."""

    def __init__(self, url: str, prefix: str = "claimradar:online:"):
        import redis

        self.url, self.prefix = url, prefix
        self.redis = redis.Redis.from_url(url)
        self._exchange = self.redis.register_script(EXCHANGE)
        self._prune = self.redis.register_script(PRUNE)

    def exchange(self, rows: list[dict], procs: list[list[Proc]], *, month: int,
                 remember: bool, late_before: int | None = None) -> dict | None:  # fmt: skip
        """Read what the claims need (before them) and, with remember, store them. None: a
        claim was remembered in an earlier month than `month` (nothing written). month < 0:
        no such check (the fallback's claims, already answered)."""
        claims, persons, fac_days, clin, perf = [], {}, {}, {}, {}
        for r, ps in zip(rows, procs, strict=True):
            d, m = r["admit_day"], r["admit_min"]
            persons[r["person_key"]] = None
            fac_days.setdefault(_fkey(r), set()).update(range(d - 30, d))
            if r["clinician"] is not None:
                lo, hi = clin.get(r["clinician"], (m, m))
                clin[r["clinician"]] = (min(lo, d * 1440, m - 59), max(hi, m))
            for pr in ps:
                if pr.start_day is not None:
                    lo, hi = perf.get(pr.performer, (pr.start_day, pr.start_day))
                    perf[pr.performer] = (min(lo, pr.start_day - 1), max(hi, pr.start_day + 1))
            entry = {
                "person": r["person_key"], "fkey": _fkey(r), "day": d, "min": m,
                "cost": r["total_cost"], "clin": r["clinician"], "month": r["month"],
                "late": late_before is not None and r["month"] < late_before,
                "procs": [[pr.performer, json.dumps(pr), pr.start_day] for pr in ps
                          if pr.start_day is not None],
            }  # fmt: skip
            claims.append({"id": r["claim_id"], "entry": entry,
                           "visit": json.dumps(visit(r)), "row": _row_json(r, ps)})  # fmt: skip
        facilities = [[k, [f"{d}:{x}" for d in sorted(days) for x in "nsk"]]
                      for k, days in fac_days.items()]  # fmt: skip
        args = {
            "prefix": self.prefix, "month": month, "remember": remember, "claims": claims,
            "persons": list(persons), "facilities": facilities,
            "clinicians": [[k, lo, hi] for k, (lo, hi) in clin.items()],
            "performers": [[k, lo, hi] for k, (lo, hi) in perf.items()],
        }  # fmt: skip
        got = json.loads(self._exchange(args=[json.dumps(args)]))
        if "fallback" in got:
            return None
        got["args"] = args
        return got

    def view(self, base: KeyState, got: dict, rows: list[dict], procs) -> KeyState:
        """A KeyState over the request's keys: the snapshot's (`base`), the shared remembered
        claims read by `exchange` (older copies of the request's claims left out), then the
        request's claims."""
        ids = {r["claim_id"] for r in rows}
        v = KeyState()
        args = got["args"]
        for person, flat in zip(args["persons"], got["persons"], strict=True):
            mine = [x for x in base.person.get(person, ()) if x.claim_id not in ids]
            shared = [Visit(*json.loads(flat[i + 1])) for i in range(0, len(flat), 2)
                      if flat[i] not in ids]  # fmt: skip
            v.person[person] = mine + [x for x in shared if x.claim_id not in base]
        olds = [e for e in got["old"] if e]
        for (fkey, fields), vals in zip(args["facilities"], got["facilities"], strict=True):
            key = tuple(fkey.split("|", 1))
            days = {d: list(b) for d, b in base.facility.get(key, {}).items()}
            for i in range(0, len(fields), 3):
                day = int(fields[i].split(":")[0])
                n, s, k = (vals[i + j] for j in range(3))
                if not n:  # Redis' nil is false in Lua
                    continue
                b = days.setdefault(day, [0, 0.0, 0])
                b[0] += int(n)
                b[1] += float(s or 0.0)
                b[2] += int(k or 0)
            earlier = [(e["day"], e["cost"]) for e in olds if e["fkey"] == fkey]
            earlier += [
                (x[3].day, x[3].cost) for c in ids if (x := base.index.get(c)) and x[1] == key
            ]
            for day, cost in earlier:  # the request's claims' earlier copies
                if day in days:
                    b = days[day]
                    b[0] -= 1
                    if cost is not None:
                        b[1] -= cost
                        b[2] -= 1
            v.facility[key] = days
        for (clin, lo, hi), flat in zip(args["clinicians"], got["clinicians"], strict=True):
            mine = [m for m in base.clinician.get(clin, ()) if lo <= m <= hi]
            for c in ids:  # the request's claims' copies in the snapshot
                x = base.index.get(c)
                if x and x[2] == clin and x[3].admit_min in mine:
                    mine.remove(x[3].admit_min)
            shared = [int(float(flat[i + 1])) for i in range(0, len(flat), 2)
                      if flat[i] not in ids]  # fmt: skip
            v.clinician[clin] = sorted(mine + shared)
        for (perf, lo, hi), flat in zip(args["performers"], got["performers"], strict=True):
            days = v.performer[perf]
            for day in range(lo, hi + 1):
                days[day].extend(x for x in base.performer.get(perf, {}).get(day, ())
                                 if x.claim_id not in ids)  # fmt: skip
            for text in flat:
                pr = Proc(*json.loads(text))
                if pr.claim_id not in ids:
                    days[pr.start_day].append(pr)
        for r, ps in zip(rows, procs, strict=True):
            v.add(r, ps)
        return v

    def rows(self) -> dict[str, dict]:
        """Every remembered claim's history row (for the month's profiles, the plan)."""
        return {k: _row(t) for k, t in self.rows_text().items()}

    def rows_text(self, claim_ids=None) -> dict[str, str]:
        """The stored rows as text (all, or those of `claim_ids`)."""
        key = self.prefix + "rows"
        if claim_ids is None:
            return {k.decode(): t.decode() for k, t in self.redis.hgetall(key).items()}
        got = self.redis.hmget(key, list(claim_ids)) if claim_ids else []
        return {c: t.decode() for c, t in zip(claim_ids, got, strict=True) if t is not None}

    def prune(self, cut: int, batch: int = 5_000) -> int:
        """Forget the remembered claims of months before `cut` (OnlineState does on a month
        roll: the history window starts there), `batch` claims per script call; every replica
        may run it at once (each claim is taken once). Returns the claims forgotten."""
        gone = 0
        while True:
            before = self._left(cut)
            left = int(self._prune(args=[self.prefix, cut, batch]))
            gone += before - left
            if left == 0 or left >= before:
                return gone

    def _left(self, cut: int) -> int:
        months = self.redis.zrangebyscore(self.prefix + "months", "-inf", f"({cut}")
        return sum(self.redis.scard(self.prefix + "m:" + m.decode()) for m in months)

    def epoch(self) -> int:
        return int(self.redis.get(self.prefix + "epoch") or 0)

    def months(self, claim_ids) -> dict[str, int]:
        keys = [self.prefix + "c:" + c for c in claim_ids]
        got = self.redis.mget(keys) if keys else []
        return {c: json.loads(t)["month"] for c, t in zip(claim_ids, got, strict=True) if t}

    def clear(self) -> None:
        """Forget everything under the prefix (tests, a new deployment)."""
        for key in self.redis.scan_iter(match=self.prefix + "*", count=1000):
            self.redis.delete(key)
