"""The review web UI for verification officers (mounted at /review by the service)."""

from serving.review.app import create_review_app

__all__ = ["create_review_app"]
