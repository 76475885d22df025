-- After the data: constraints and indexes (one pass each instead of per row), sequences past
-- the generated ids, then Supabase-style row-level security (grants: api_grants.sql).

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['contacts', 'interactions', 'raw_events', 'jobs', 'embeddings',
                           'ai_insights', 'documents', 'threads', 'messages', 'tool_invocations',
                           'user_integrations', 'user_sync_prefs', 'sync_audit', 'sessions'] LOOP
    EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I FOREIGN KEY (user_id) '
                   'REFERENCES auth.users (id) ON DELETE CASCADE', t, t || '_user_id_fkey');
    -- The primary keys of these two lead with user_id already.
    IF t NOT IN ('user_integrations', 'user_sync_prefs') THEN
      EXECUTE format('CREATE INDEX %I ON public.%I (user_id)', t || '_user_id_idx', t);
    END IF;
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON public.%I FOR ALL TO authenticated '
                   'USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid())',
                   'Users manage their own ' || replace(t, '_', ' '), t);
  END LOOP;
END
$$;

ALTER TABLE public.interactions ADD CONSTRAINT interactions_contact_id_fkey
  FOREIGN KEY (contact_id) REFERENCES public.contacts (id) ON DELETE CASCADE;
ALTER TABLE public.ai_insights ADD CONSTRAINT ai_insights_contact_id_fkey
  FOREIGN KEY (contact_id) REFERENCES public.contacts (id) ON DELETE SET NULL;
ALTER TABLE public.documents ADD CONSTRAINT documents_contact_id_fkey
  FOREIGN KEY (contact_id) REFERENCES public.contacts (id) ON DELETE SET NULL;
ALTER TABLE public.threads ADD CONSTRAINT threads_contact_id_fkey
  FOREIGN KEY (contact_id) REFERENCES public.contacts (id) ON DELETE SET NULL;
ALTER TABLE public.messages ADD CONSTRAINT messages_thread_id_fkey
  FOREIGN KEY (thread_id) REFERENCES public.threads (id) ON DELETE CASCADE;
ALTER TABLE public.tool_invocations ADD CONSTRAINT tool_invocations_message_id_fkey
  FOREIGN KEY (message_id) REFERENCES public.messages (id) ON DELETE CASCADE;

CREATE INDEX contacts_user_id_email_idx ON public.contacts (user_id, lower(email));
CREATE INDEX interactions_contact_id_occurred_at_idx
  ON public.interactions (contact_id, occurred_at DESC);
CREATE INDEX raw_events_occurred_at_idx ON public.raw_events (occurred_at);
CREATE INDEX jobs_status_updated_at_idx ON public.jobs (status, updated_at);
CREATE INDEX messages_thread_id_created_at_idx ON public.messages (thread_id, created_at);
CREATE INDEX tool_invocations_message_id_idx ON public.tool_invocations (message_id);
CREATE INDEX sessions_expires_at_idx ON public.sessions (expires_at);
CREATE INDEX ai_insights_contact_id_idx ON public.ai_insights (contact_id) WHERE NOT dismissed;

-- Rows were inserted with explicit ids; the app's next insert must continue after them.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['interactions', 'raw_events', 'jobs', 'embeddings', 'messages',
                           'tool_invocations', 'sync_audit'] LOOP
    EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), '
                   'coalesce((SELECT max(id) FROM public.%I), 1), '
                   '(SELECT count(*) > 0 FROM public.%I))', 'public.' || t, t, t);
  END LOOP;
END
$$;

COMMENT ON TABLE public.raw_events IS 'Provider webhooks and sync payloads; archived after 2 years';
COMMENT ON TABLE public.jobs IS 'Background jobs; completed ones archived after 30 days';
COMMENT ON TABLE public.embeddings IS 'Regenerable 384-dimension embeddings';
COMMENT ON COLUMN public.user_integrations.access_token IS 'Encrypted by the app (v1: envelope)';
