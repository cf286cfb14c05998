"""contract: the canonical tables and their dtypes, the one mapping from XML 130 names, validation
with field-level errors, the XML and tabular readers, ingest and export. The lowest layer: it
depends on nothing else of the project (configuration such as the linkage key is passed in)."""

from contract.batch import EnvelopeBatch, validate_batch
from contract.ingest import IngestReport, ingest, load_dataset
from contract.limits import Limits
from contract.schema import CLAIMS, DRUG_LINES, FACILITIES, LABELS, SCHEMA_VERSION, SERVICE_LINES
from contract.validate import ContractError
from contract.xml_reader import HostileInput, file_error_message, read_envelope

__all__ = [
    "CLAIMS",
    "DRUG_LINES",
    "FACILITIES",
    "LABELS",
    "SCHEMA_VERSION",
    "SERVICE_LINES",
    "ContractError",
    "EnvelopeBatch",
    "HostileInput",
    "IngestReport",
    "Limits",
    "file_error_message",
    "ingest",
    "load_dataset",
    "read_envelope",
    "validate_batch",
]
