"""The benchmarks' database: the OmniCRM sample on the Supabase platform layer, in a throwaway
cluster whose bootstrap superuser is ``supabase_admin``, reached as the non-superuser
``postgres`` like drtool on a real project (issue: Supabase for real)."""

from __future__ import annotations

from drtool.pg.cluster.ephemeral import EphemeralCluster
from drtool.pg.sample.load import SampleInfo, load_sample
from drtool.pg.sample.supabase_layer import APP_ROLE, SUPABASE_ADMIN, install_supabase_platform

__all__ = ["SUPABASE_ADMIN", "supabase_sample"]


def supabase_sample(cluster: EphemeralCluster, name: str, scale: float) -> tuple[str, SampleInfo]:
    """Create database ``name`` with the platform layer and the sample; its DSN as
    ``postgres`` (the cluster's password) and what was loaded."""
    install_supabase_platform(cluster.create_database(name), cluster.password)
    dsn = cluster.dsn(name, user=APP_ROLE)
    return dsn, load_sample(dsn, scale=scale, password=cluster.password, platform="supabase")
