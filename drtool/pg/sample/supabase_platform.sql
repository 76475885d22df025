-- A Supabase-hosted PostgreSQL 15 project's platform layer: what exists in a new project's
-- database before the application's first migration, with the owners, grants and default
-- privileges of the real platform. Run once per database, as the cluster's bootstrap superuser
-- `supabase_admin`, in an empty database, in one transaction. Roles are cluster-wide: they may
-- already exist (another database of the cluster), so they are created idempotently and then
-- brought to the platform's attributes.
--
-- Written from these upstream sources (structure reproduced, SQL our own):
--   supabase/postgres  migrations/db/migrate.sh
--       the cluster's superuser is supabase_admin; `postgres` is created SUPERUSER and made
--       owner of the database, the init scripts run AS postgres, then the migrations run as
--       supabase_admin and the first one demotes postgres.  So `extensions` (and the pgcrypto /
--       uuid-ossp extensions, the public/storage default privileges, the publication) belong
--       to postgres, while auth, storage, realtime and graphql_public belong to supabase_admin.
--   supabase/postgres  migrations/db/init-scripts/00000000000000-initial-schema.sql
--       publication supabase_realtime; anon/authenticated NOLOGIN, service_role BYPASSRLS,
--       authenticator NOINHERIT LOGIN member of the three; supabase_replication_admin LOGIN
--       REPLICATION; supabase_read_only_user LOGIN BYPASSRLS + pg_read_all_data; schema
--       extensions with uuid-ossp and pgcrypto; USAGE on public/extensions for the API roles;
--       default privileges in public FOR ROLE postgres and FOR ROLE supabase_admin: ALL to
--       postgres, anon, authenticated, service_role; statement_timeout 3s/8s for anon/authenticated.
--   supabase/postgres  migrations/db/init-scripts/00000000000001-auth-schema.sql
--       CREATE SCHEMA auth AUTHORIZATION supabase_admin; supabase_auth_admin NOINHERIT CREATEROLE
--       LOGIN owns the auth tables and functions; auth.schema_migrations' pre-GoTrue versions.
--   supabase/postgres  migrations/db/init-scripts/00000000000002-storage-schema.sql
--       CREATE SCHEMA storage AUTHORIZATION supabase_admin; default privileges in storage FOR
--       ROLE postgres; supabase_storage_admin NOINHERIT CREATEROLE LOGIN owns the storage tables.
--   supabase/postgres  migrations/db/init-scripts/00000000000003-post-setup.sql
--       dashboard_user NOSUPERUSER CREATEDB CREATEROLE REPLICATION with ALL on auth, storage,
--       extensions; search_path of postgres and supabase_admin; the pg_cron / pg_net
--       access event triggers.
--   supabase/postgres  ansible/files/pgbouncer_config/pgbouncer_auth_schema.sql
--       role pgbouncer, schema pgbouncer owned by it, SECURITY DEFINER pgbouncer.get_auth.
--   supabase/postgres  ansible/files/stat_extension.sql: pg_stat_statements in extensions.
--   supabase/postgres  migrations/db/migrations/10000000000000_demote-postgres.sql
--       postgres NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS, ALL on the
--       database and on the auth, storage and extensions schemas and everything in them.
--   supabase/postgres  migrations/db/migrations/20211115181400_update-auth-permissions.sql
--       default privileges FOR ROLE supabase_auth_admin IN SCHEMA auth: ALL to postgres and
--       dashboard_user (so every auth table GoTrue creates is writable by postgres).
--   supabase/postgres  migrations/db/migrations/20211118015519_create-realtime-schema.sql,
--       20211122051245_update-realtime-permissions.sql, 20211130151719_update-realtime-permissions.sql
--       schema realtime (supabase_admin); default privileges FOR ROLE supabase_admin IN SCHEMA
--       realtime to postgres, dashboard_user.
--   supabase/postgres  migrations/db/migrations/20220126121436_finer-postgrest-triggers.sql,
--       20220321174452_fix-postgrest-alter-type-event-trigger.sql
--       event triggers pgrst_ddl_watch (ddl_command_end) and pgrst_drop_watch (sql_drop) with
--       functions extensions.pgrst_ddl_watch() / extensions.pgrst_drop_watch() (NOTIFY pgrst).
--   supabase/postgres  migrations/db/migrations/20220317095840_pg_graphql.sql,
--       20220404205710_pg_graphql-on-by-default.sql
--       schema graphql_public with the placeholder graphql_public.graphql(); default privileges
--       FOR ROLE supabase_admin in graphql_public; event triggers issue_pg_graphql_access and
--       issue_graphql_placeholder.
--   supabase/postgres  migrations/db/migrations/20220609081115_grant-supabase-auth-admin-and-supabase-storage-admin-to-postgres.sql
--       GRANT supabase_auth_admin, supabase_storage_admin TO postgres ("so that the postgres
--       role can manage auth tables triggers, storage tables policies").  Real PostgreSQL 15.8
--       projects still show these memberships (and supabase_realtime_admin) in
--       `pg_dumpall --roles-only`; the later 20250421084701_revoke_admin_roles_from_postgres.sql
--       (newer images, PostgreSQL 17 projects) revokes them and relies on the supautils
--       extension's policy_grants instead.  Default here: the PostgreSQL 15 state; with
--       `SET drtool.supabase_admin_memberships = 'off'` the newer state (see the end).
--   supabase/postgres  migrations/db/migrations/20221103090837_revoke_admin.sql: authenticator
--       is not a member of supabase_admin.
--   supabase/postgres  migrations/db/migrations/20230201083204_grant_auth_roles_to_postgres.sql,
--       20230306081037_grant_pg_monitor_to_postgres.sql,
--       20240606060239_grant_predefined_roles_to_postgres.sql
--       postgres is a member of anon, authenticated, service_role, pg_monitor,
--       pg_read_all_data and pg_signal_backend (pg_read_all_data: postgres can read every
--       table, storage.migrations included, so pg_dump as postgres works).
--   supabase/postgres  migrations/db/migrations/20230224042246_grant_extensions_perms_for_postgres.sql
--       ALL WITH GRANT OPTION to postgres on everything in extensions, and default privileges
--       FOR ROLE supabase_admin IN SCHEMA extensions likewise.
--   supabase/postgres  migrations/db/migrations/20230529180330_alter_api_roles_for_inherit.sql
--       anon, authenticated and service_role are INHERIT.
--   supabase/postgres  migrations/db/migrations/20231013070755_grant_authenticator_to_supabase_storage_admin.sql
--   supabase/postgres  migrations/db/migrations/20250402065937_alter_internal_event_triggers_owner_to_supabase_admin.sql
--       every event trigger and its function belongs to supabase_admin.
--   supabase/postgres  ansible/files/postgresql_config/supautils.conf.j2
--       on the platform the supautils extension lets postgres CREATE EXTENSION (as
--       supabase_admin) and create policies on auth.* / storage.* tables (policy_grants);
--       supautils is not available here.  Event triggers need a superuser: postgres cannot
--       create them.
--   supabase/auth  migrations/*.sql (00_init_auth_schema ... 20260625000000)
--       the auth tables as GoTrue leaves them, created by supabase_auth_admin:
--       users (encrypted_password, token columns, generated confirmed_at), identities
--       (FK users ON DELETE CASCADE, generated email), sessions, refresh_tokens (bigserial),
--       mfa_*, one_time_tokens, flow_state, sso_*/saml_*, oauth_*, webauthn_*,
--       audit_log_entries, instances, schema_migrations; auth.uid()/role()/email()/jwt();
--       20240612123726_enable_rls_update_grants.up.sql: RLS on the auth tables and SELECT WITH
--       GRANT OPTION to postgres.  GoTrue records each file's numeric prefix in
--       auth.schema_migrations (max here: 20260625000000, add_custom_claims_allowlist).
--   supabase/storage  migrations/tenant/*.sql (0002 ... 0063)
--       storage.buckets / objects / migrations / s3_multipart_uploads(_parts), created by
--       supabase_storage_admin; objects.owner uuid deprecated (0017 dropped its FK, 0018 added
--       TEXT owner_id); 0046/0049: ALL on buckets and objects to anon, authenticated,
--       service_role and to postgres WITH GRANT OPTION; 0055-prevent-direct-deletes.sql:
--       storage.protect_delete() BEFORE DELETE ... FOR EACH STATEMENT on buckets and objects
--       refuses direct deletes unless storage.allow_delete_query = 'true'; storage.migrations
--       rows are (id, name, sha1 hash, executed_at) for 0 create-migrations-table ... 63.
--
-- Left out (not in Debian's postgresql-15 or not structural for drtool): pgjwt, pg_graphql
-- (so no `graphql` schema), pgsodium/vault, pg_net, supautils, the realtime service's tables
-- except realtime.schema_migrations, storage's analytics/vector bucket tables.

SET LOCAL client_min_messages = warning;

-- ---------------------------------------------------------------------------------------------
-- Roles (cluster-wide)
-- ---------------------------------------------------------------------------------------------

DO $$
DECLARE
  spec text[];
BEGIN
  FOREACH spec SLICE 1 IN ARRAY ARRAY[
    ['postgres', 'LOGIN'],
    ['anon', 'NOLOGIN'],
    ['authenticated', 'NOLOGIN'],
    ['service_role', 'NOLOGIN'],
    ['authenticator', 'LOGIN'],
    ['dashboard_user', 'NOLOGIN'],
    ['pgbouncer', 'LOGIN'],
    ['supabase_auth_admin', 'LOGIN'],
    ['supabase_storage_admin', 'LOGIN'],
    ['supabase_realtime_admin', 'NOLOGIN'],
    ['supabase_replication_admin', 'LOGIN'],
    ['supabase_read_only_user', 'LOGIN'],
    ['supabase_etl_admin', 'LOGIN']
  ] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = spec[1]) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', spec[1], spec[2]);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by an install into another database
      END;
    END IF;
  END LOOP;
END
$$;

-- The attributes `pg_dumpall --roles-only` shows on a PostgreSQL 15 project (no passwords here:
-- login roles other than postgres cannot log in over TCP, which is what the tests want).
ALTER ROLE supabase_admin SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
ALTER ROLE postgres NOSUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
ALTER ROLE anon NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE authenticated NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE service_role NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION BYPASSRLS;
ALTER ROLE authenticator NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE dashboard_user NOSUPERUSER INHERIT CREATEROLE CREATEDB NOLOGIN REPLICATION NOBYPASSRLS;
ALTER ROLE pgbouncer NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE supabase_auth_admin NOSUPERUSER NOINHERIT CREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE supabase_storage_admin NOSUPERUSER NOINHERIT CREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE supabase_realtime_admin NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE supabase_replication_admin NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN REPLICATION NOBYPASSRLS;
ALTER ROLE supabase_read_only_user NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION BYPASSRLS;
ALTER ROLE supabase_etl_admin NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN REPLICATION NOBYPASSRLS;

ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
ALTER ROLE authenticator SET statement_timeout = '8s';
ALTER ROLE authenticator SET lock_timeout = '8s';
ALTER ROLE postgres SET search_path = "\$user", public, extensions;
ALTER ROLE supabase_admin SET search_path = "$user", public, auth, extensions;
ALTER ROLE supabase_auth_admin SET search_path = auth;
ALTER ROLE supabase_auth_admin SET idle_in_transaction_session_timeout = 60000;
ALTER ROLE supabase_storage_admin SET search_path = storage;
ALTER ROLE supabase_read_only_user SET default_transaction_read_only = on;

-- Memberships (re-granting an existing membership is a no-op).
GRANT anon, authenticated, service_role TO authenticator;
GRANT anon, authenticated, service_role TO postgres;
GRANT pg_monitor, pg_read_all_data, pg_signal_backend TO postgres;
GRANT pg_read_all_data, pg_monitor TO supabase_read_only_user;
GRANT pg_read_all_data, pg_monitor TO supabase_etl_admin;
GRANT authenticator TO supabase_storage_admin;

-- ---------------------------------------------------------------------------------------------
-- The database: owned by postgres, as `alter database postgres owner to postgres` makes it
-- ---------------------------------------------------------------------------------------------

DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I OWNER TO postgres', current_database());
  EXECUTE format('GRANT ALL ON DATABASE %I TO postgres, dashboard_user', current_database());
END
$$;

-- ---------------------------------------------------------------------------------------------
-- The init scripts: run AS postgres while postgres is still a superuser (migrate.sh)
-- ---------------------------------------------------------------------------------------------

ALTER ROLE postgres SUPERUSER;
SET LOCAL ROLE postgres;

CREATE PUBLICATION supabase_realtime;

CREATE SCHEMA extensions;
CREATE EXTENSION "uuid-ossp" WITH SCHEMA extensions;
CREATE EXTENSION pgcrypto WITH SCHEMA extensions;
CREATE EXTENSION pg_stat_statements WITH SCHEMA extensions;

GRANT USAGE ON SCHEMA public TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;
GRANT ALL ON SCHEMA extensions TO dashboard_user;

-- Every table, function and sequence the application (postgres) or the platform
-- (supabase_admin) creates in public is open to the API roles; RLS decides the rows.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;

CREATE SCHEMA auth AUTHORIZATION supabase_admin;
CREATE SCHEMA storage AUTHORIZATION supabase_admin;
GRANT USAGE ON SCHEMA storage TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA storage
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA storage
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA storage
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;

CREATE SCHEMA pgbouncer AUTHORIZATION pgbouncer;
REVOKE ALL ON SCHEMA public FROM pgbouncer;

RESET ROLE;
-- 10000000000000_demote-postgres.sql
ALTER ROLE postgres NOSUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;

-- ---------------------------------------------------------------------------------------------
-- The migrations, as supabase_admin
-- ---------------------------------------------------------------------------------------------

-- Reads pg_shadow, so it must run as a superuser.
CREATE FUNCTION pgbouncer.get_auth(p_usename text)
RETURNS TABLE (username text, password text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = ''
AS $$
BEGIN
  RETURN QUERY
    SELECT s.usename::text, s.passwd::text FROM pg_catalog.pg_shadow AS s
    WHERE s.usename = p_usename;
END
$$;
REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO pgbouncer;

-- Extensions: postgres may use and re-grant everything in them.
GRANT ALL ON ALL TABLES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL ROUTINES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL SEQUENCES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL TABLES IN SCHEMA extensions TO dashboard_user;
GRANT ALL ON ALL ROUTINES IN SCHEMA extensions TO dashboard_user;
GRANT ALL ON ALL SEQUENCES IN SCHEMA extensions TO dashboard_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA extensions
  GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES IN SCHEMA extensions
  GRANT ALL ON ROUTINES TO postgres WITH GRANT OPTION;
ALTER DEFAULT PRIVILEGES IN SCHEMA extensions
  GRANT ALL ON SEQUENCES TO postgres WITH GRANT OPTION;

-- PostgREST reloads its schema cache on every DDL change.
CREATE FUNCTION extensions.pgrst_ddl_watch() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    IF cmd.command_tag IN (
         'CREATE SCHEMA', 'ALTER SCHEMA', 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO',
         'ALTER TABLE', 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'CREATE VIEW',
         'ALTER VIEW', 'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW',
         'CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE TRIGGER', 'CREATE TYPE', 'ALTER TYPE',
         'CREATE RULE', 'COMMENT')
       AND cmd.schema_name IS DISTINCT FROM 'pg_temp' THEN
      NOTIFY pgrst, 'reload schema';
    END IF;
  END LOOP;
END
$$;

CREATE FUNCTION extensions.pgrst_drop_watch() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  obj record;
BEGIN
  FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
    IF obj.object_type IN ('schema', 'table', 'foreign table', 'view', 'materialized view',
                           'function', 'trigger', 'type', 'rule')
       AND obj.is_temporary IS false THEN
      NOTIFY pgrst, 'reload schema';
    END IF;
  END LOOP;
END
$$;

-- Grants postgres the cron schema when pg_cron is enabled.
CREATE FUNCTION extensions.grant_pg_cron_access() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() AS ev
             JOIN pg_catalog.pg_extension AS ext ON ev.objid = ext.oid
             WHERE ext.extname = 'pg_cron') THEN
    GRANT USAGE ON SCHEMA cron TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES IN SCHEMA cron GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES IN SCHEMA cron GRANT ALL ON FUNCTIONS TO postgres WITH GRANT OPTION;
    ALTER DEFAULT PRIVILEGES IN SCHEMA cron GRANT ALL ON SEQUENCES TO postgres WITH GRANT OPTION;
    GRANT ALL ON ALL TABLES IN SCHEMA cron TO postgres WITH GRANT OPTION;
    REVOKE ALL ON TABLE cron.job FROM postgres;
    GRANT SELECT ON TABLE cron.job TO postgres WITH GRANT OPTION;
  END IF;
END
$$;
COMMENT ON FUNCTION extensions.grant_pg_cron_access() IS 'Grants access to pg_cron';

-- Opens pg_net's HTTP functions to the API roles when pg_net is enabled.
CREATE FUNCTION extensions.grant_pg_net_access() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() AS ev
             JOIN pg_catalog.pg_extension AS ext ON ev.objid = ext.oid
             WHERE ext.extname = 'pg_net') THEN
    GRANT USAGE ON SCHEMA net TO postgres, anon, authenticated, service_role;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA net TO postgres, anon, authenticated, service_role;
  END IF;
END
$$;
COMMENT ON FUNCTION extensions.grant_pg_net_access() IS 'Grants access to pg_net';

-- Points graphql_public.graphql at pg_graphql once its resolver exists.
CREATE FUNCTION extensions.grant_pg_graphql_access() RETURNS event_trigger
LANGUAGE plpgsql AS $func$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() AS ev
             JOIN pg_catalog.pg_proc AS p ON ev.objid = p.oid
             WHERE p.proname = 'resolve' AND p.pronamespace::regnamespace::text = 'graphql') THEN
    GRANT USAGE ON SCHEMA graphql TO postgres, anon, authenticated, service_role;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA graphql TO postgres, anon, authenticated, service_role;
    GRANT USAGE ON SCHEMA graphql_public TO postgres WITH GRANT OPTION;
  END IF;
END
$func$;
COMMENT ON FUNCTION extensions.grant_pg_graphql_access() IS 'Grants access to pg_graphql';

-- Restores the placeholder when pg_graphql is dropped.
CREATE FUNCTION extensions.set_graphql_placeholder() RETURNS event_trigger
LANGUAGE plpgsql AS $func$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS ev
             WHERE ev.schema_name = 'graphql_public') THEN
    NOTIFY pgrst, 'reload schema';
  END IF;
END
$func$;
COMMENT ON FUNCTION extensions.set_graphql_placeholder() IS
  'Reintroduces placeholder function for graphql_public.graphql';

CREATE EVENT TRIGGER pgrst_ddl_watch ON ddl_command_end
  EXECUTE FUNCTION extensions.pgrst_ddl_watch();
CREATE EVENT TRIGGER pgrst_drop_watch ON sql_drop
  EXECUTE FUNCTION extensions.pgrst_drop_watch();
CREATE EVENT TRIGGER issue_pg_cron_access ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION')
  EXECUTE FUNCTION extensions.grant_pg_cron_access();
CREATE EVENT TRIGGER issue_pg_net_access ON ddl_command_end WHEN TAG IN ('CREATE EXTENSION')
  EXECUTE FUNCTION extensions.grant_pg_net_access();
CREATE EVENT TRIGGER issue_pg_graphql_access ON ddl_command_end WHEN TAG IN ('CREATE FUNCTION')
  EXECUTE FUNCTION extensions.grant_pg_graphql_access();
CREATE EVENT TRIGGER issue_graphql_placeholder ON sql_drop WHEN TAG IN ('DROP EXTENSION')
  EXECUTE FUNCTION extensions.set_graphql_placeholder();

REVOKE ALL ON FUNCTION extensions.grant_pg_cron_access() FROM postgres;
REVOKE ALL ON FUNCTION extensions.grant_pg_net_access() FROM postgres;
GRANT ALL ON FUNCTION extensions.grant_pg_cron_access() TO dashboard_user;
GRANT ALL ON FUNCTION extensions.grant_pg_net_access() TO dashboard_user;

-- Schema graphql_public: the placeholder answers until pg_graphql is enabled.
CREATE SCHEMA graphql_public;
CREATE FUNCTION graphql_public.graphql(
  "operationName" text DEFAULT NULL,
  query text DEFAULT NULL,
  variables jsonb DEFAULT NULL,
  extensions jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  RETURN jsonb_build_object('errors', jsonb_build_array(
    jsonb_build_object('message', 'pg_graphql extension is not enabled.')));
END
$$;
GRANT USAGE ON SCHEMA graphql_public TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA graphql_public
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA graphql_public
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA graphql_public
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
GRANT ALL ON FUNCTION graphql_public.graphql(text, text, jsonb, jsonb)
  TO postgres, anon, authenticated, service_role;

-- Schema realtime (its service connects as supabase_admin and owns its tables). The version
-- list is representative of the Realtime service's migrations, not checked against its repo.
CREATE SCHEMA realtime;
GRANT USAGE ON SCHEMA realtime TO postgres, anon, authenticated, service_role;
GRANT ALL ON SCHEMA realtime TO supabase_realtime_admin;
ALTER DEFAULT PRIVILEGES IN SCHEMA realtime GRANT ALL ON TABLES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA realtime GRANT ALL ON SEQUENCES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA realtime GRANT ALL ON FUNCTIONS TO postgres, dashboard_user;
CREATE TABLE realtime.schema_migrations (
  version bigint PRIMARY KEY,
  inserted_at timestamp(0) without time zone
);
INSERT INTO realtime.schema_migrations (version, inserted_at)
SELECT v, timestamp '2024-01-15 09:00:00' + (n * interval '1 hour')
FROM unnest(ARRAY[
  20211116024918, 20211116045059, 20211116050929, 20211116051442, 20211116212300,
  20211116213355, 20211116213934, 20211116214523, 20211122062447, 20211124070109,
  20211202204204, 20211202204605, 20211210212804, 20211228014915, 20220107221237,
  20220228202821, 20220312004840, 20220603231003, 20220603232444, 20220615214548,
  20220712093339, 20220908172859, 20220916233421, 20230119133233, 20230128025114,
  20230128025212, 20230227211149, 20230228184745, 20230308225145, 20230328144023,
  20231018144023, 20231204144023, 20231204144024, 20231204144025, 20240108234812,
  20240109165339, 20240227174441, 20240311171622, 20240321100241, 20240401105812,
  20240418121054, 20240523004032, 20240618124746, 20240801235015, 20240805133720,
  20240827160934, 20240919163303, 20240919163305, 20241019105805, 20241030150047,
  20241108114728, 20241121104152, 20241130184212, 20241220035512, 20241220123912,
  20241224161212, 20250107150512, 20250110162412, 20250123174212, 20250128220012,
  20250506224012, 20250523164012, 20250714121412
]::bigint[]) WITH ORDINALITY AS m(v, n);
GRANT SELECT ON realtime.schema_migrations TO anon, authenticated, service_role;
GRANT ALL ON realtime.schema_migrations TO supabase_realtime_admin;

-- auth and storage: the demoted postgres keeps ALL on both schemas; the service roles create
-- their tables there; dashboard_user (the Studio) may do anything.
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT ALL ON SCHEMA auth TO supabase_auth_admin, dashboard_user, postgres;
GRANT ALL ON SCHEMA storage TO supabase_storage_admin WITH GRANT OPTION;
GRANT ALL ON SCHEMA storage TO dashboard_user, postgres;
GRANT ALL ON SCHEMA extensions TO postgres;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
  GRANT ALL ON TABLES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
  GRANT ALL ON SEQUENCES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_auth_admin IN SCHEMA auth
  GRANT ALL ON ROUTINES TO postgres, dashboard_user;

-- ---------------------------------------------------------------------------------------------
-- auth: what GoTrue's migrations leave, created as supabase_auth_admin
-- ---------------------------------------------------------------------------------------------

SET LOCAL ROLE supabase_auth_admin;

CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
CREATE TYPE auth.code_challenge_method AS ENUM ('s256', 'plain');
CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');
CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone');
CREATE TYPE auth.oauth_authorization_status AS ENUM ('pending', 'approved', 'denied', 'expired');
CREATE TYPE auth.oauth_client_type AS ENUM ('public', 'confidential');
CREATE TYPE auth.oauth_registration_type AS ENUM ('dynamic', 'manual');
CREATE TYPE auth.oauth_response_type AS ENUM ('code');
CREATE TYPE auth.one_time_token_type AS ENUM (
  'confirmation_token', 'reauthentication_token', 'recovery_token',
  'email_change_token_new', 'email_change_token_current', 'phone_change_token'
);

CREATE TABLE auth.instances (
  id uuid NOT NULL,
  uuid uuid,
  raw_base_config text,
  created_at timestamptz,
  updated_at timestamptz,
  CONSTRAINT instances_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE auth.instances IS 'Auth: Manages users across multiple sites.';

CREATE TABLE auth.users (
  instance_id uuid,
  id uuid NOT NULL,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token_new varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text DEFAULT NULL,
  phone_confirmed_at timestamptz,
  phone_change text DEFAULT '',
  phone_change_token varchar(255) DEFAULT '',
  phone_change_sent_at timestamptz,
  confirmed_at timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
  email_change_token_current varchar(255) DEFAULT '',
  email_change_confirm_status smallint DEFAULT 0,
  banned_until timestamptz,
  reauthentication_token varchar(255) DEFAULT '',
  reauthentication_sent_at timestamptz,
  is_sso_user boolean NOT NULL DEFAULT false,
  deleted_at timestamptz,
  is_anonymous boolean NOT NULL DEFAULT false,
  CONSTRAINT users_pkey PRIMARY KEY (id),
  CONSTRAINT users_phone_key UNIQUE (phone),
  CONSTRAINT users_email_change_confirm_status_check
    CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2)
);
CREATE INDEX users_instance_id_idx ON auth.users (instance_id);
CREATE INDEX users_instance_id_email_idx ON auth.users (instance_id, lower(email));
CREATE UNIQUE INDEX users_email_partial_key ON auth.users (email) WHERE is_sso_user = false;
CREATE INDEX users_is_anonymous_idx ON auth.users (is_anonymous);
CREATE UNIQUE INDEX confirmation_token_idx ON auth.users (confirmation_token)
  WHERE confirmation_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX recovery_token_idx ON auth.users (recovery_token)
  WHERE recovery_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_current_idx ON auth.users (email_change_token_current)
  WHERE email_change_token_current !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_new_idx ON auth.users (email_change_token_new)
  WHERE email_change_token_new !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX reauthentication_token_idx ON auth.users (reauthentication_token)
  WHERE reauthentication_token !~ '^[0-9 ]*$';
COMMENT ON TABLE auth.users IS 'Auth: Stores user login data within a secure schema.';
COMMENT ON COLUMN auth.users.is_sso_user IS
  'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';

CREATE TABLE auth.identities (
  provider_id text NOT NULL,
  user_id uuid NOT NULL,
  identity_data jsonb NOT NULL,
  provider text NOT NULL,
  last_sign_in_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz,
  email text GENERATED ALWAYS AS (lower(identity_data ->> 'email')) STORED,
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  CONSTRAINT identities_pkey PRIMARY KEY (id),
  CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider),
  CONSTRAINT identities_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE INDEX identities_user_id_idx ON auth.identities (user_id);
CREATE INDEX identities_email_idx ON auth.identities (email text_pattern_ops);
COMMENT ON TABLE auth.identities IS 'Auth: Stores identities associated to a user.';
COMMENT ON COLUMN auth.identities.email IS
  'Auth: Email is a generated column that references the optional email property in the identity_data';

CREATE TABLE auth.oauth_clients (
  id uuid NOT NULL,
  client_secret_hash text,
  registration_type auth.oauth_registration_type NOT NULL,
  redirect_uris text NOT NULL,
  grant_types text NOT NULL,
  client_name text,
  client_uri text,
  logo_uri text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  client_type auth.oauth_client_type NOT NULL DEFAULT 'confidential',
  token_endpoint_auth_method text NOT NULL,
  CONSTRAINT oauth_clients_pkey PRIMARY KEY (id),
  CONSTRAINT oauth_clients_client_name_length CHECK (char_length(client_name) <= 1024),
  CONSTRAINT oauth_clients_client_uri_length CHECK (char_length(client_uri) <= 2048),
  CONSTRAINT oauth_clients_logo_uri_length CHECK (char_length(logo_uri) <= 2048),
  CONSTRAINT oauth_clients_token_endpoint_auth_method_check
    CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none'))
);
CREATE INDEX oauth_clients_deleted_at_idx ON auth.oauth_clients (deleted_at);

CREATE TABLE auth.sessions (
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  created_at timestamptz,
  updated_at timestamptz,
  factor_id uuid,
  aal auth.aal_level,
  not_after timestamptz,
  refreshed_at timestamp without time zone,
  user_agent text,
  ip inet,
  tag text,
  oauth_client_id uuid,
  refresh_token_hmac_key text,
  refresh_token_counter bigint,
  scopes text,
  CONSTRAINT sessions_pkey PRIMARY KEY (id),
  CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT sessions_oauth_client_id_fkey FOREIGN KEY (oauth_client_id)
    REFERENCES auth.oauth_clients (id) ON DELETE CASCADE,
  CONSTRAINT sessions_scopes_length CHECK (char_length(scopes) <= 4096)
);
CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id);
CREATE INDEX user_id_created_at_idx ON auth.sessions (user_id, created_at);
CREATE INDEX sessions_not_after_idx ON auth.sessions (not_after DESC);
CREATE INDEX sessions_oauth_client_id_idx ON auth.sessions (oauth_client_id);
COMMENT ON TABLE auth.sessions IS 'Auth: Stores session data associated to a user.';
COMMENT ON COLUMN auth.sessions.not_after IS
  'Auth: Not after is a nullable column that contains a timestamp after which the session should be regarded as expired.';
COMMENT ON COLUMN auth.sessions.refresh_token_hmac_key IS
  'Holds a HMAC-SHA256 key used to sign refresh tokens for this session.';

CREATE TABLE auth.refresh_tokens (
  instance_id uuid,
  id bigserial NOT NULL,
  token varchar(255),
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz,
  updated_at timestamptz,
  parent varchar(255),
  session_id uuid,
  CONSTRAINT refresh_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT refresh_tokens_token_unique UNIQUE (token),
  CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id)
    REFERENCES auth.sessions (id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_instance_id_idx ON auth.refresh_tokens (instance_id);
CREATE INDEX refresh_tokens_instance_id_user_id_idx ON auth.refresh_tokens (instance_id, user_id);
CREATE INDEX refresh_tokens_parent_idx ON auth.refresh_tokens (parent);
CREATE INDEX refresh_tokens_session_id_revoked_idx ON auth.refresh_tokens (session_id, revoked);
CREATE INDEX refresh_tokens_updated_at_idx ON auth.refresh_tokens (updated_at DESC);
COMMENT ON TABLE auth.refresh_tokens IS
  'Auth: Store of tokens used to refresh JWT tokens once they expire.';

CREATE TABLE auth.mfa_factors (
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  friendly_name text,
  factor_type auth.factor_type NOT NULL,
  status auth.factor_status NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  secret text,
  phone text DEFAULT NULL,
  last_challenged_at timestamptz DEFAULT NULL,
  web_authn_credential jsonb,
  web_authn_aaguid uuid,
  last_webauthn_challenge_data jsonb,
  CONSTRAINT mfa_factors_pkey PRIMARY KEY (id),
  CONSTRAINT mfa_factors_last_challenged_at_key UNIQUE (last_challenged_at),
  CONSTRAINT mfa_factors_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique ON auth.mfa_factors
  (friendly_name, user_id) WHERE TRIM(BOTH FROM friendly_name) <> '';
CREATE INDEX factor_id_created_at_idx ON auth.mfa_factors (user_id, created_at);
CREATE INDEX mfa_factors_user_id_idx ON auth.mfa_factors (user_id);
CREATE UNIQUE INDEX unique_phone_factor_per_user ON auth.mfa_factors (user_id, phone);
COMMENT ON TABLE auth.mfa_factors IS 'auth: stores metadata about factors';

CREATE TABLE auth.mfa_challenges (
  id uuid NOT NULL,
  factor_id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  verified_at timestamptz,
  ip_address inet NOT NULL,
  otp_code text,
  web_authn_session_data jsonb,
  CONSTRAINT mfa_challenges_pkey PRIMARY KEY (id),
  CONSTRAINT mfa_challenges_auth_factor_id_fkey FOREIGN KEY (factor_id)
    REFERENCES auth.mfa_factors (id) ON DELETE CASCADE
);
CREATE INDEX mfa_challenge_created_at_idx ON auth.mfa_challenges (created_at DESC);
COMMENT ON TABLE auth.mfa_challenges IS 'auth: stores metadata about challenge requests made';

CREATE TABLE auth.mfa_amr_claims (
  session_id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  authentication_method text NOT NULL,
  id uuid NOT NULL,
  CONSTRAINT amr_id_pk PRIMARY KEY (id),
  CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey
    UNIQUE (session_id, authentication_method),
  CONSTRAINT mfa_amr_claims_session_id_fkey FOREIGN KEY (session_id)
    REFERENCES auth.sessions (id) ON DELETE CASCADE
);
COMMENT ON TABLE auth.mfa_amr_claims IS
  'auth: stores authenticator method reference claims for multi factor authentication';

CREATE TABLE auth.one_time_tokens (
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  token_type auth.one_time_token_type NOT NULL,
  token_hash text NOT NULL,
  relates_to text NOT NULL,
  created_at timestamp without time zone NOT NULL DEFAULT now(),
  updated_at timestamp without time zone NOT NULL DEFAULT now(),
  CONSTRAINT one_time_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT one_time_tokens_token_hash_check CHECK (char_length(token_hash) > 0),
  CONSTRAINT one_time_tokens_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE INDEX one_time_tokens_token_hash_hash_idx ON auth.one_time_tokens USING hash (token_hash);
CREATE INDEX one_time_tokens_relates_to_hash_idx ON auth.one_time_tokens USING hash (relates_to);
CREATE UNIQUE INDEX one_time_tokens_user_id_token_type_key ON auth.one_time_tokens
  (user_id, token_type);

CREATE TABLE auth.flow_state (
  id uuid NOT NULL,
  user_id uuid,
  auth_code text,
  code_challenge_method auth.code_challenge_method,
  code_challenge text,
  provider_type text NOT NULL,
  provider_access_token text,
  provider_refresh_token text,
  created_at timestamptz,
  updated_at timestamptz,
  authentication_method text NOT NULL,
  auth_code_issued_at timestamptz,
  invite_token text,
  referrer text,
  oauth_client_state_id uuid,
  linking_target_id uuid,
  email_optional boolean NOT NULL DEFAULT false,
  CONSTRAINT flow_state_pkey PRIMARY KEY (id)
);
CREATE INDEX idx_auth_code ON auth.flow_state (auth_code);
CREATE INDEX idx_user_id_auth_method ON auth.flow_state (user_id, authentication_method);
CREATE INDEX flow_state_created_at_idx ON auth.flow_state (created_at DESC);
COMMENT ON TABLE auth.flow_state IS 'Stores metadata for all OAuth/SSO login flows';

CREATE TABLE auth.sso_providers (
  id uuid NOT NULL,
  resource_id text,
  created_at timestamptz,
  updated_at timestamptz,
  disabled boolean,
  CONSTRAINT sso_providers_pkey PRIMARY KEY (id),
  CONSTRAINT "resource_id not empty" CHECK (resource_id = NULL OR char_length(resource_id) > 0)
);
CREATE UNIQUE INDEX sso_providers_resource_id_idx ON auth.sso_providers (lower(resource_id));
CREATE INDEX sso_providers_resource_id_pattern_idx ON auth.sso_providers
  (resource_id text_pattern_ops);
COMMENT ON TABLE auth.sso_providers IS
  'Auth: Manages SSO identity provider information; see saml_providers for SAML.';

CREATE TABLE auth.sso_domains (
  id uuid NOT NULL,
  sso_provider_id uuid NOT NULL,
  domain text NOT NULL,
  created_at timestamptz,
  updated_at timestamptz,
  CONSTRAINT sso_domains_pkey PRIMARY KEY (id),
  CONSTRAINT sso_domains_sso_provider_id_fkey FOREIGN KEY (sso_provider_id)
    REFERENCES auth.sso_providers (id) ON DELETE CASCADE,
  CONSTRAINT "domain not empty" CHECK (char_length(domain) > 0)
);
CREATE INDEX sso_domains_sso_provider_id_idx ON auth.sso_domains (sso_provider_id);
CREATE UNIQUE INDEX sso_domains_domain_idx ON auth.sso_domains (lower(domain));

CREATE TABLE auth.saml_providers (
  id uuid NOT NULL,
  sso_provider_id uuid NOT NULL,
  entity_id text NOT NULL,
  metadata_xml text NOT NULL,
  metadata_url text,
  attribute_mapping jsonb,
  created_at timestamptz,
  updated_at timestamptz,
  name_id_format text,
  CONSTRAINT saml_providers_pkey PRIMARY KEY (id),
  CONSTRAINT saml_providers_entity_id_key UNIQUE (entity_id),
  CONSTRAINT saml_providers_sso_provider_id_fkey FOREIGN KEY (sso_provider_id)
    REFERENCES auth.sso_providers (id) ON DELETE CASCADE,
  CONSTRAINT "metadata_xml not empty" CHECK (char_length(metadata_xml) > 0),
  CONSTRAINT "metadata_url not empty" CHECK (metadata_url = NULL OR char_length(metadata_url) > 0),
  CONSTRAINT "entity_id not empty" CHECK (char_length(entity_id) > 0)
);
CREATE INDEX saml_providers_sso_provider_id_idx ON auth.saml_providers (sso_provider_id);

CREATE TABLE auth.saml_relay_states (
  id uuid NOT NULL,
  sso_provider_id uuid NOT NULL,
  request_id text NOT NULL,
  for_email text,
  redirect_to text,
  created_at timestamptz,
  updated_at timestamptz,
  flow_state_id uuid,
  CONSTRAINT saml_relay_states_pkey PRIMARY KEY (id),
  CONSTRAINT saml_relay_states_sso_provider_id_fkey FOREIGN KEY (sso_provider_id)
    REFERENCES auth.sso_providers (id) ON DELETE CASCADE,
  CONSTRAINT saml_relay_states_flow_state_id_fkey FOREIGN KEY (flow_state_id)
    REFERENCES auth.flow_state (id) ON DELETE CASCADE,
  CONSTRAINT "request_id not empty" CHECK (char_length(request_id) > 0)
);
CREATE INDEX saml_relay_states_sso_provider_id_idx ON auth.saml_relay_states (sso_provider_id);
CREATE INDEX saml_relay_states_for_email_idx ON auth.saml_relay_states (for_email);
CREATE INDEX saml_relay_states_created_at_idx ON auth.saml_relay_states (created_at DESC);

CREATE TABLE auth.audit_log_entries (
  instance_id uuid,
  id uuid NOT NULL,
  payload json,
  created_at timestamptz,
  ip_address varchar(64) NOT NULL DEFAULT '',
  CONSTRAINT audit_log_entries_pkey PRIMARY KEY (id)
);
CREATE INDEX audit_logs_instance_id_idx ON auth.audit_log_entries (instance_id);
COMMENT ON TABLE auth.audit_log_entries IS 'Auth: Audit trail for user actions.';

CREATE TABLE auth.oauth_authorizations (
  id uuid NOT NULL,
  authorization_id text NOT NULL,
  client_id uuid NOT NULL,
  user_id uuid,
  redirect_uri text NOT NULL,
  scope text NOT NULL,
  state text,
  resource text,
  code_challenge text,
  code_challenge_method auth.code_challenge_method,
  response_type auth.oauth_response_type NOT NULL DEFAULT 'code',
  status auth.oauth_authorization_status NOT NULL DEFAULT 'pending',
  authorization_code text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL DEFAULT (now() + interval '3 minutes'),
  approved_at timestamptz,
  nonce text,
  CONSTRAINT oauth_authorizations_pkey PRIMARY KEY (id),
  CONSTRAINT oauth_authorizations_authorization_id_key UNIQUE (authorization_id),
  CONSTRAINT oauth_authorizations_authorization_code_key UNIQUE (authorization_code),
  CONSTRAINT oauth_authorizations_client_id_fkey FOREIGN KEY (client_id)
    REFERENCES auth.oauth_clients (id) ON DELETE CASCADE,
  CONSTRAINT oauth_authorizations_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT oauth_authorizations_expires_at_future CHECK (expires_at > created_at),
  CONSTRAINT oauth_authorizations_nonce_length CHECK (char_length(nonce) <= 255)
);
CREATE INDEX oauth_auth_pending_exp_idx ON auth.oauth_authorizations (expires_at)
  WHERE status = 'pending';

CREATE TABLE auth.oauth_consents (
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  client_id uuid NOT NULL,
  scopes text NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  CONSTRAINT oauth_consents_pkey PRIMARY KEY (id),
  CONSTRAINT oauth_consents_user_client_unique UNIQUE (user_id, client_id),
  CONSTRAINT oauth_consents_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT oauth_consents_client_id_fkey FOREIGN KEY (client_id)
    REFERENCES auth.oauth_clients (id) ON DELETE CASCADE,
  CONSTRAINT oauth_consents_scopes_not_empty CHECK (char_length(TRIM(BOTH FROM scopes)) > 0),
  CONSTRAINT oauth_consents_revoked_after_granted
    CHECK (revoked_at IS NULL OR revoked_at >= granted_at)
);
CREATE INDEX oauth_consents_user_order_idx ON auth.oauth_consents (user_id, granted_at DESC);

CREATE TABLE auth.oauth_client_states (
  id uuid NOT NULL,
  provider_type text NOT NULL,
  code_verifier text,
  created_at timestamptz NOT NULL,
  CONSTRAINT oauth_client_states_pkey PRIMARY KEY (id)
);
CREATE INDEX idx_oauth_client_states_created_at ON auth.oauth_client_states (created_at);

CREATE TABLE auth.custom_oauth_providers (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  provider_type text NOT NULL,
  identifier text NOT NULL,
  name text NOT NULL,
  client_id text NOT NULL,
  client_secret text NOT NULL,
  acceptable_client_ids text[] NOT NULL DEFAULT '{}',
  scopes text[] NOT NULL DEFAULT '{}',
  pkce_enabled boolean NOT NULL DEFAULT true,
  attribute_mapping jsonb NOT NULL DEFAULT '{}',
  authorization_params jsonb NOT NULL DEFAULT '{}',
  enabled boolean NOT NULL DEFAULT true,
  email_optional boolean NOT NULL DEFAULT false,
  issuer text,
  discovery_url text,
  skip_nonce_check boolean NOT NULL DEFAULT false,
  cached_discovery jsonb,
  discovery_cached_at timestamptz,
  authorization_url text,
  token_url text,
  userinfo_url text,
  jwks_uri text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  custom_claims_allowlist text[] NOT NULL DEFAULT '{}',
  CONSTRAINT custom_oauth_providers_pkey PRIMARY KEY (id),
  CONSTRAINT custom_oauth_providers_identifier_key UNIQUE (identifier),
  CONSTRAINT custom_oauth_providers_provider_type_check
    CHECK (provider_type IN ('oauth2', 'oidc')),
  CONSTRAINT custom_oauth_providers_oidc_requires_issuer
    CHECK (provider_type <> 'oidc' OR issuer IS NOT NULL)
);

CREATE TABLE auth.webauthn_credentials (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL,
  credential_id bytea NOT NULL,
  public_key bytea NOT NULL,
  attestation_type text NOT NULL DEFAULT '',
  aaguid uuid,
  sign_count bigint NOT NULL DEFAULT 0,
  transports jsonb NOT NULL DEFAULT '[]'::jsonb,
  backup_eligible boolean NOT NULL DEFAULT false,
  backed_up boolean NOT NULL DEFAULT false,
  friendly_name text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  CONSTRAINT webauthn_credentials_pkey PRIMARY KEY (id),
  CONSTRAINT webauthn_credentials_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX webauthn_credentials_credential_id_key ON auth.webauthn_credentials
  (credential_id);
CREATE INDEX webauthn_credentials_user_id_idx ON auth.webauthn_credentials (user_id);

CREATE TABLE auth.webauthn_challenges (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  user_id uuid,
  challenge_type text NOT NULL,
  session_data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  CONSTRAINT webauthn_challenges_pkey PRIMARY KEY (id),
  CONSTRAINT webauthn_challenges_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES auth.users (id) ON DELETE CASCADE,
  CONSTRAINT webauthn_challenges_challenge_type_check
    CHECK (challenge_type IN ('signup', 'registration', 'authentication'))
);
CREATE INDEX webauthn_challenges_user_id_idx ON auth.webauthn_challenges (user_id);
CREATE INDEX webauthn_challenges_expires_at_idx ON auth.webauthn_challenges (expires_at);

CREATE TABLE auth.schema_migrations (
  version varchar(255) NOT NULL,
  CONSTRAINT schema_migrations_pkey PRIMARY KEY (version)
);
COMMENT ON TABLE auth.schema_migrations IS 'Auth: Manages updates to the auth system.';

-- The versions the platform's init script seeds, then every GoTrue migration's prefix.
INSERT INTO auth.schema_migrations (version)
SELECT unnest(ARRAY[
  '20171026211738', '20171026211808', '20171026211834', '20180103212743', '20180108183307',
  '20180119214651', '20180125194653', '00', '20210710035447', '20210722035447',
  '20210730183235', '20210909172000', '20210927181326', '20211122151130', '20211124214934',
  '20211202183645', '20220114185221', '20220114185340', '20220224000811', '20220323170000',
  '20220429102000', '20220531120530', '20220614074223', '20220811173540', '20221003041349',
  '20221003041400', '20221011041400', '20221020193600', '20221021073300', '20221021082433',
  '20221027105023', '20221114143122', '20221114143410', '20221125140132', '20221208132122',
  '20221215195500', '20221215195800', '20221215195900', '20230116124310', '20230116124412',
  '20230131181311', '20230322519590', '20230402418590', '20230411005111', '20230508135423',
  '20230523124323', '20230818113222', '20230914180801', '20231027141322', '20231114161723',
  '20231117164230', '20240115144230', '20240214120130', '20240306115329', '20240314092811',
  '20240427152123', '20240612123726', '20240729123726', '20240802193726', '20240806073726',
  '20241009103726', '20250717082212', '20250731150234', '20250804100000', '20250901200500',
  '20250903112500', '20250904133000', '20250925093508', '20251007112900', '20251104100000',
  '20251111201300', '20251201000000', '20260115000000', '20260121000000', '20260219120000',
  '20260302000000', '20260625000000'
]);

-- auth.uid() and friends read the JWT claims PostgREST puts in the request's settings.
CREATE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
COMMENT ON FUNCTION auth.uid() IS 'Deprecated. Use auth.jwt() -> ''sub'' instead.';

CREATE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
COMMENT ON FUNCTION auth.role() IS 'Deprecated. Use auth.jwt() -> ''role'' instead.';

CREATE FUNCTION auth.email() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;
COMMENT ON FUNCTION auth.email() IS 'Deprecated. Use auth.jwt() -> ''email'' instead.';

CREATE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

-- RLS on (no policies: only the owner and BYPASSRLS roles such as postgres see rows), and
-- SELECT that postgres may pass on.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY[
    'schema_migrations', 'instances', 'users', 'audit_log_entries', 'saml_relay_states',
    'refresh_tokens', 'mfa_factors', 'sessions', 'sso_providers', 'sso_domains',
    'mfa_challenges', 'mfa_amr_claims', 'saml_providers', 'flow_state', 'identities',
    'one_time_tokens'
  ] LOOP
    EXECUTE format('ALTER TABLE auth.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('GRANT SELECT ON auth.%I TO postgres WITH GRANT OPTION', t);
  END LOOP;
END
$$;

RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- storage: what the Storage API's tenant migrations leave, created as supabase_storage_admin
-- ---------------------------------------------------------------------------------------------

SET LOCAL ROLE supabase_storage_admin;

CREATE TYPE storage.buckettype AS ENUM ('STANDARD', 'ANALYTICS', 'VECTOR');

CREATE TABLE storage.migrations (
  id integer NOT NULL,
  name varchar(100) NOT NULL,
  hash varchar(40) NOT NULL,
  executed_at timestamp DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT migrations_pkey PRIMARY KEY (id),
  CONSTRAINT migrations_name_key UNIQUE (name)
);

CREATE TABLE storage.buckets (
  id text NOT NULL,
  name text NOT NULL,
  owner uuid,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  public boolean DEFAULT false,
  avif_autodetection boolean DEFAULT false,
  file_size_limit bigint,
  allowed_mime_types text[],
  owner_id text,
  type storage.buckettype NOT NULL DEFAULT 'STANDARD',
  versioning_status text NOT NULL DEFAULT 'DISABLED',
  CONSTRAINT buckets_pkey PRIMARY KEY (id),
  CONSTRAINT buckets_versioning_status_check
    CHECK (versioning_status IN ('DISABLED', 'ENABLED', 'SUSPENDED')),
  CONSTRAINT buckets_versioning_dark_check CHECK (versioning_status = 'DISABLED')
);
CREATE UNIQUE INDEX bname ON storage.buckets (name);
COMMENT ON COLUMN storage.buckets.owner IS 'Field is deprecated, use owner_id instead';

CREATE TABLE storage.objects (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  bucket_id text,
  name text,
  owner uuid,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  last_accessed_at timestamptz DEFAULT now(),
  metadata jsonb,
  path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
  version text,
  owner_id text,
  user_metadata jsonb,
  archived_at timestamptz,
  is_delete_marker boolean NOT NULL DEFAULT false,
  is_versioned boolean NOT NULL DEFAULT false,
  CONSTRAINT objects_pkey PRIMARY KEY (id),
  CONSTRAINT "objects_bucketId_fkey" FOREIGN KEY (bucket_id) REFERENCES storage.buckets (id)
);
CREATE UNIQUE INDEX bucketid_objname ON storage.objects (bucket_id, name);
CREATE INDEX name_prefix_search ON storage.objects (name text_pattern_ops);
CREATE INDEX idx_objects_bucket_id_name ON storage.objects (bucket_id, name COLLATE "C");
COMMENT ON COLUMN storage.objects.owner IS 'Field is deprecated, use owner_id instead';

CREATE TABLE storage.s3_multipart_uploads (
  id text NOT NULL,
  in_progress_size bigint NOT NULL DEFAULT 0,
  upload_signature text NOT NULL,
  bucket_id text NOT NULL,
  key text COLLATE "C" NOT NULL,
  version text NOT NULL,
  owner_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  user_metadata jsonb,
  metadata jsonb,
  CONSTRAINT s3_multipart_uploads_pkey PRIMARY KEY (id),
  CONSTRAINT s3_multipart_uploads_bucket_id_fkey FOREIGN KEY (bucket_id)
    REFERENCES storage.buckets (id)
);
CREATE INDEX idx_multipart_uploads_list ON storage.s3_multipart_uploads
  (bucket_id, key, created_at);

CREATE TABLE storage.s3_multipart_uploads_parts (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  upload_id text NOT NULL,
  size bigint NOT NULL DEFAULT 0,
  part_number integer NOT NULL,
  bucket_id text NOT NULL,
  key text COLLATE "C" NOT NULL,
  etag text NOT NULL,
  owner_id text,
  version text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT s3_multipart_uploads_parts_pkey PRIMARY KEY (id),
  CONSTRAINT s3_multipart_uploads_parts_upload_id_fkey FOREIGN KEY (upload_id)
    REFERENCES storage.s3_multipart_uploads (id) ON DELETE CASCADE,
  CONSTRAINT s3_multipart_uploads_parts_bucket_id_fkey FOREIGN KEY (bucket_id)
    REFERENCES storage.buckets (id)
);

ALTER TABLE storage.migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.s3_multipart_uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.s3_multipart_uploads_parts ENABLE ROW LEVEL SECURITY;

CREATE FUNCTION storage.foldername(name text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  parts text[] := string_to_array(name, '/');
BEGIN
  RETURN parts[1:array_length(parts, 1) - 1];
END
$$;

CREATE FUNCTION storage.filename(name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  parts text[] := string_to_array(name, '/');
BEGIN
  RETURN parts[array_length(parts, 1)];
END
$$;

CREATE FUNCTION storage.extension(name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  parts text[] := string_to_array(name, '/');
BEGIN
  RETURN reverse(split_part(reverse(parts[array_length(parts, 1)]), '.', 1));
END
$$;

CREATE FUNCTION storage.search(prefix text, bucketname text, limits integer DEFAULT 100,
                               levels integer DEFAULT 1, offsets integer DEFAULT 0)
RETURNS TABLE (name text, id uuid, updated_at timestamptz, created_at timestamptz,
               last_accessed_at timestamptz, metadata jsonb)
LANGUAGE sql STABLE AS $$
  SELECT o.path_tokens[levels], o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata
  FROM storage.objects AS o
  WHERE o.bucket_id = bucketname AND o.name ILIKE prefix || '%'
  ORDER BY o.name
  LIMIT limits OFFSET offsets
$$;

CREATE FUNCTION storage.get_size_by_bucket() RETURNS TABLE (size bigint, bucket_id text)
LANGUAGE sql STABLE AS $$
  SELECT sum((o.metadata ->> 'size')::bigint), o.bucket_id
  FROM storage.objects AS o GROUP BY o.bucket_id
$$;

CREATE FUNCTION storage.operation() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT current_setting('storage.operation', true)
$$;

CREATE FUNCTION storage.update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

CREATE FUNCTION storage.enforce_bucket_name_length() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF length(NEW.name) > 100 THEN
    RAISE EXCEPTION 'bucket name "%" is too long (% characters). Max is 100.',
      NEW.name, length(NEW.name);
  END IF;
  RETURN NEW;
END
$$;

-- Deleting rows here orphans the files in the object store: only the Storage API may, and it
-- says so with SET storage.allow_delete_query = 'true'.
CREATE FUNCTION storage.protect_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' THEN
    RAISE EXCEPTION 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      USING HINT = 'This prevents accidental data loss from orphaned objects.',
            ERRCODE = '42501';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER update_objects_updated_at BEFORE UPDATE ON storage.objects
  FOR EACH ROW EXECUTE FUNCTION storage.update_updated_at_column();
CREATE TRIGGER enforce_bucket_name_length_trigger BEFORE INSERT OR UPDATE OF name
  ON storage.buckets FOR EACH ROW EXECUTE FUNCTION storage.enforce_bucket_name_length();
CREATE TRIGGER protect_buckets_delete BEFORE DELETE ON storage.buckets
  FOR EACH STATEMENT EXECUTE FUNCTION storage.protect_delete();
CREATE TRIGGER protect_objects_delete BEFORE DELETE ON storage.objects
  FOR EACH STATEMENT EXECUTE FUNCTION storage.protect_delete();

GRANT ALL ON storage.buckets, storage.objects TO anon, authenticated, service_role;
GRANT ALL ON storage.buckets, storage.objects TO postgres WITH GRANT OPTION;
REVOKE ALL ON storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts
  FROM anon, authenticated;
GRANT ALL ON storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts TO service_role;
GRANT SELECT ON storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts
  TO anon, authenticated;
GRANT ALL ON storage.migrations TO postgres;

-- One row per tenant migration the Storage API has run: (id, name, sha1 of the file, when);
-- the names are upstream's, the hashes 40-hex stand-ins.
INSERT INTO storage.migrations (id, name, hash, executed_at)
SELECT m.n - 1, m.name,
       left(encode(sha256(convert_to('storage:' || m.name, 'UTF8')), 'hex'), 40),
       timestamp '2024-01-15 09:00:00' + ((m.n - 1) * interval '1 minute')
FROM unnest(ARRAY[
  'create-migrations-table', 'initialmigration', 'storage-schema', 'pathtoken-column',
  'add-migrations-rls', 'add-size-functions', 'change-column-name-in-get-size',
  'add-rls-to-buckets', 'add-public-to-buckets', 'fix-search-function',
  'search-files-search-function', 'add-trigger-to-auto-update-updated_at-column',
  'add-automatic-avif-detection-flag', 'add-bucket-custom-limits', 'use-bytes-for-max-size',
  'add-can-insert-object-function', 'add-version', 'drop-owner-foreign-key',
  'add_owner_id_column_deprecate_owner', 'alter-default-value-objects-id',
  'list-objects-with-delimiter', 's3-multipart-uploads', 's3-multipart-uploads-big-ints',
  'optimize-search-function', 'operation-function', 'custom-metadata', 'objects-prefixes',
  'search-v2', 'object-bucket-name-sorting', 'create-prefixes', 'update-object-levels',
  'objects-level-index', 'backward-compatible-index-on-objects',
  'backward-compatible-index-on-prefixes', 'optimize-search-function-v1',
  'add-insert-trigger-prefixes', 'optimise-existing-functions',
  'add-bucket-name-length-trigger', 'iceberg-catalog-flag-on-buckets',
  'add-search-v2-sort-support', 'fix-prefix-race-conditions-optimized',
  'add-object-level-update-trigger', 'rollback-prefix-triggers', 'fix-object-level',
  'vector-bucket-type', 'vector-buckets', 'buckets-objects-grants', 'iceberg-table-metadata',
  'iceberg-catalog-ids', 'buckets-objects-grants-postgres', 'search-v2-optimised',
  'index-backward-compatible-search', 'drop-not-used-indexes-and-functions',
  'drop-index-lower-name', 'drop-index-object-level', 'prevent-direct-deletes',
  'fix-optimized-search-function', 's3-multipart-uploads-metadata', 'operation-ergonomics',
  'drop-unused-functions', 'optimize-existing-functions-again', 'mark-filename-immutable',
  'object-versioning-core', 'fix-search-name-relative-to-prefix'
]) WITH ORDINALITY AS m(name, n);

RESET ROLE;

-- The Studio (dashboard_user) may do anything in auth and storage.
GRANT ALL ON ALL TABLES IN SCHEMA auth TO dashboard_user;
GRANT ALL ON ALL SEQUENCES IN SCHEMA auth TO dashboard_user;
GRANT ALL ON ALL ROUTINES IN SCHEMA auth TO dashboard_user;
GRANT ALL ON ALL SEQUENCES IN SCHEMA storage TO dashboard_user;
GRANT ALL ON ALL ROUTINES IN SCHEMA storage TO dashboard_user;

-- ---------------------------------------------------------------------------------------------
-- postgres and the service admin roles (cluster-wide; see the header)
-- ---------------------------------------------------------------------------------------------

DO $$
BEGIN
  IF coalesce(current_setting('drtool.supabase_admin_memberships', true), '') IN ('', 'on') THEN
    -- PostgreSQL 15 projects: postgres inherits what the service roles own, so it may add
    -- triggers to auth.users and policies to storage.objects (and alter or drop them).
    GRANT supabase_auth_admin, supabase_storage_admin, supabase_realtime_admin TO postgres;
  ELSE
    -- Newer images: no membership; supautils' policy_grants stands in for policies.
    REVOKE supabase_auth_admin, supabase_storage_admin, supabase_realtime_admin FROM postgres;
  END IF;
END
$$;
