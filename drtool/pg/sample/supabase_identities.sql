-- With platform="supabase": GoTrue gives every email user an identity, so the sample's users
-- get one too (deterministic ids, like everything else in the sample).
INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
                             created_at, updated_at, id)
SELECT u.id::text, u.id,
       jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', true,
                          'phone_verified', false),
       'email', u.last_sign_in_at, u.created_at, u.updated_at,
       md5('identity:' || u.id::text)::uuid
FROM auth.users AS u;
