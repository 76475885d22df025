"""Managed PostgreSQL platforms as data: the roles that own the platform's objects, the schemas
the platform manages, the application roles that grants must keep working for, and the
platform tables whose rows are the application's (Supabase's ``auth.users``).

Nothing here runs SQL: ``pg/platform/detect.py`` detects a platform with these facts, backups record
it in the manifest (``platform``), and restores plan around it. A new platform is a new entry
in ``PLATFORMS``, not new code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Platform:
    """One hosting platform.

    ``marker_roles``: roles whose presence (all of them) identifies the platform.
    ``admin_roles``: platform roles that own schemas, functions, event triggers and default
    privileges. The application's role may be a member of some (Supabase's ``postgres`` of
    ``supabase_auth_admin`` and ``supabase_storage_admin`` on PostgreSQL 15 projects), never
    of the superuser ones; restores check memberships on the target, not here.
    ``platform_roles``: every role the platform creates in each project (admin roles included);
    a fresh project has them, so a restore never needs to create them there.
    ``app_roles``: roles the application's grants and policies name (Supabase's API roles).
    ``managed_schemas``: schemas the platform creates and migrates; a fresh project has them.
    ``data_tables``: tables in managed schemas whose rows belong to the application, restored
    into a fresh project's existing tables, parents before children.
    ``secret_columns``: columns holding credentials (password hashes, tokens), redacted from
    archives handed to data subjects.
    ``schema_versions``: component -> (table, column) whose maximum is the component's
    migration version; a fresh project at another version is named before a restore.
    """

    name: str
    title: str
    marker_roles: frozenset[str]
    admin_roles: frozenset[str]
    platform_roles: frozenset[str] = frozenset()
    app_roles: frozenset[str] = frozenset()
    managed_schemas: frozenset[str] = frozenset()
    data_tables: tuple[str, ...] = ()
    secret_columns: frozenset[str] = frozenset()
    schema_versions: dict[str, tuple[str, str]] = field(default_factory=dict)

    def manages(self, schema: str) -> bool:
        return schema in self.managed_schemas

    def owned_by_platform(self, role: str) -> bool:
        return role in self.platform_roles or role in self.admin_roles


_SUPABASE_ADMINS = frozenset(
    {
        "supabase_admin",
        "supabase_auth_admin",
        "supabase_storage_admin",
        "supabase_functions_admin",
        "supabase_realtime_admin",
        "supabase_replication_admin",
        "supabase_etl_admin",
        "pgsodium_keyholder",
        "pgsodium_keyiduser",
        "pgsodium_keymaker",
    }
)

SUPABASE = Platform(
    name="supabase",
    title="Supabase",
    marker_roles=frozenset({"supabase_admin", "authenticator"}),
    admin_roles=_SUPABASE_ADMINS,
    platform_roles=_SUPABASE_ADMINS
    | frozenset(
        {
            "postgres",
            "authenticator",
            "anon",
            "authenticated",
            "service_role",
            "dashboard_user",
            "pgbouncer",
            "supabase_read_only_user",
            "supabase_privileged_role",
        }
    ),
    app_roles=frozenset({"anon", "authenticated", "service_role"}),
    # The Supabase CLI's internal schemas: the platform creates and migrates them.
    managed_schemas=frozenset(
        {
            "auth",
            "storage",
            "extensions",
            "graphql",
            "graphql_public",
            "realtime",
            "_realtime",
            "supabase_functions",
            "supabase_migrations",
            "vault",
            "pgsodium",
            "pgsodium_masks",
            "net",
            "pgbouncer",
            "pgtle",
            "cron",
            "_analytics",
            "_supavisor",
        }
    ),
    data_tables=(
        "auth.users",
        "auth.identities",
        "auth.mfa_factors",
        "storage.buckets",
        "storage.objects",
    ),
    secret_columns=frozenset(
        {
            "auth.users.encrypted_password",
            "auth.users.confirmation_token",
            "auth.users.recovery_token",
            "auth.users.email_change_token_new",
            "auth.users.email_change_token_current",
            "auth.users.phone_change_token",
            "auth.users.reauthentication_token",
            "auth.refresh_tokens.token",
            "auth.refresh_tokens.parent",  # the previous (revoked) token's value
            "auth.sessions.refresh_token_hmac_key",
            "auth.one_time_tokens.token_hash",
            "auth.mfa_factors.secret",
            "auth.mfa_challenges.otp_code",
            "auth.flow_state.auth_code",
            "auth.flow_state.code_challenge",
            "auth.flow_state.provider_access_token",
            "auth.flow_state.provider_refresh_token",
            "auth.oauth_authorizations.authorization_code",
            "auth.oauth_authorizations.code_challenge",
            "auth.webauthn_challenges.session_data",
        }
    ),
    schema_versions={
        "auth": ("auth.schema_migrations", "version"),
        "storage": ("storage.migrations", "id"),
    },
)

RDS = Platform(
    name="rds",
    title="Amazon RDS / Aurora",
    marker_roles=frozenset({"rds_superuser", "rdsadmin"}),
    admin_roles=frozenset({"rdsadmin", "rds_superuser"}),
    platform_roles=frozenset(
        {"rdsadmin", "rds_superuser", "rds_replication", "rds_password", "rdstopmgr"}
    ),
)

CLOUD_SQL = Platform(
    name="cloudsql",
    title="Google Cloud SQL",
    marker_roles=frozenset({"cloudsqlsuperuser"}),
    admin_roles=frozenset({"cloudsqladmin", "cloudsqlsuperuser"}),
    platform_roles=frozenset(
        {
            "cloudsqladmin",
            "cloudsqlsuperuser",
            "cloudsqlagent",
            "cloudsqlreplica",
            "cloudsqlimportexport",
        }
    ),
)

AZURE = Platform(
    name="azure",
    title="Azure Database for PostgreSQL",
    marker_roles=frozenset({"azure_pg_admin"}),
    admin_roles=frozenset({"azuresu", "azure_pg_admin"}),
    platform_roles=frozenset({"azuresu", "azure_pg_admin", "replication", "localadmin"}),
)

NEON = Platform(
    name="neon",
    title="Neon",
    marker_roles=frozenset({"neon_superuser"}),
    admin_roles=frozenset({"cloud_admin", "neon_superuser"}),
    platform_roles=frozenset({"cloud_admin", "neon_superuser", "neon_service"}),
)

PLATFORMS: tuple[Platform, ...] = (SUPABASE, RDS, CLOUD_SQL, AZURE, NEON)


def platform_named(name: str | None) -> Platform | None:
    """The platform a manifest's ``platform`` names (None for unknown names or None)."""
    return next((p for p in PLATFORMS if p.name == name), None)


def identify(roles: set[str]) -> Platform | None:
    """The platform whose marker roles all exist among ``roles`` (a cluster's role names)."""
    return next((p for p in PLATFORMS if p.marker_roles <= roles), None)
