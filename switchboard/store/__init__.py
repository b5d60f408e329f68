"""The state database: SQLAlchemy models, Alembic migrations and the SqlStore adapter."""

from ..clock import utc_now
from . import job_tables as job_tables  # registers the job tables on the metadata
from .intake_attempts import SqlCrashGuard
from .migrate import current_revision, ensure_current, head_revision, upgrade
from .sql import SqlStore
from .unit_of_work import SqlUnitOfWork

__all__ = [
    "SqlCrashGuard",
    "SqlStore",
    "SqlUnitOfWork",
    "current_revision",
    "ensure_current",
    "head_revision",
    "upgrade",
    "utc_now",
]
