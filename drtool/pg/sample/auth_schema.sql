-- Without a platform layer: a minimal Supabase-style auth schema for the sample's users (the
-- columns the sample fills and auth.uid()). With platform="supabase" the platform's auth
-- schema is used instead and this file is not run.

CREATE SCHEMA auth;

CREATE TABLE auth.users (
  instance_id uuid,
  id uuid PRIMARY KEY,
  aud varchar(255),
  role varchar(255),
  email varchar(255) UNIQUE,
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  phone text UNIQUE,
  is_anonymous boolean NOT NULL DEFAULT false,
  deleted_at timestamptz
);

-- As in Supabase: the caller's user id from the JWT claims PostgREST sets per request.
CREATE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
