-- Supabase's API roles. Roles are cluster-wide: another database on the same cluster may have
-- created them already, or be creating them right now (unique_violation).
DO $$
DECLARE
  spec text[];
BEGIN
  FOREACH spec SLICE 1 IN ARRAY ARRAY[
    ['anon', 'NOLOGIN NOINHERIT'],
    ['authenticated', 'NOLOGIN NOINHERIT'],
    ['service_role', 'NOLOGIN NOINHERIT BYPASSRLS']
  ] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = spec[1]) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', spec[1], spec[2]);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
      END;
    END IF;
  END LOOP;
END
$$;
