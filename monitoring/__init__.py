"""Monitoring: a month of claims against the champion's training window (data quality, input,
score, band and rule drift, alerts), the HTML report and the MLflow run. Beside training/ and
serving/: it reads datasets and registered bundles (scoring/, features/, contract/), never the
case store or the service."""

from monitoring.monitor import Monitoring, Thresholds, check_month, monitor

__all__ = ["Monitoring", "Thresholds", "check_month", "monitor"]
