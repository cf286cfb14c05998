"""The review workflow's store operations, one import away: the queue and its filters
(`serving.review.queue`), a case with its history and assignment (`cases`), decisions with
optimistic locking (`decisions`), supervisor approval (`approvals`), facility pages
(`facilities`), the audit trail (`audit`) and the errors they raise (`errors`). Each write is one
transaction that also writes its audit event.
"""

from __future__ import annotations

from serving.review.approvals import pending_approvals, review
from serving.review.audit import audit_events
from serving.review.cases import DECIDABLE, assign, case_state, case_view, patient_history
from serving.review.decisions import REASON_CODES, DecisionForm, _number, decide, evaluate
from serving.review.errors import Conflict, Invalid, NotFound, WorkflowError
from serving.review.facilities import facility_view
from serving.review.queue import QUEUE_STATUSES, QueueFilter, filter_options, queue, queue_all
from serving.store import OUTCOMES

__all__ = [
    "DECIDABLE",
    "OUTCOMES",
    "QUEUE_STATUSES",
    "REASON_CODES",
    "Conflict",
    "DecisionForm",
    "Invalid",
    "NotFound",
    "QueueFilter",
    "WorkflowError",
    "_number",
    "assign",
    "audit_events",
    "case_state",
    "case_view",
    "decide",
    "evaluate",
    "facility_view",
    "filter_options",
    "patient_history",
    "pending_approvals",
    "queue",
    "queue_all",
    "review",
]
