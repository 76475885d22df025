-- Sample rows, generated server-side. Row i of a table is a pure function of (seed, i): child rows
-- pick their parent by number and derive its owner with the same functions the parent used, so
-- no lookups are needed and every child has its parent's user_id. Byte columns (b, b1, ...) are
-- computed once per row in an OFFSET 0 subquery; see pg_temp.s16 for why.

-- Contact and owner of chat thread t (60% of threads are about a contact).
CREATE FUNCTION pg_temp.thread_contact(t bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN pg_temp.u(t, 71) < 0.6 THEN pg_temp.pick(t, 72, pg_temp.n('contacts')) END
$$;
CREATE FUNCTION pg_temp.thread_owner(t bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN pg_temp.u(t, 71) < 0.6
    THEN pg_temp.owner(pg_temp.pick(t, 72, pg_temp.n('contacts')), 10)
    ELSE pg_temp.owner(t, 70) END
$$;

INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                        last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_super_admin,
                        created_at, updated_at, phone)
SELECT '00000000-0000-0000-0000-000000000000', pg_temp.user_id(i), 'authenticated', 'authenticated',
       lower(translate(fn || '.' || ln, 'ü'' ', 'u')) || i || '@'
         || pg_temp.one(i, 3, ARRAY['gmail.com', 'outlook.com', 'fastmail.com', 'proton.me',
                                    'icloud.com', 'hey.com']),
       '$2a$10$' || left(translate(encode(b, 'base64'), E'+=\n', '.'), 53),
       created + interval '3 minutes' * pg_temp.u(i, 5),
       pg_temp.ago(i, 6, interval '30 days'),
       jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email', 'google')),
       jsonb_build_object(
         'full_name', fn || ' ' || ln,
         'avatar_url', 'https://lh3.googleusercontent.com/a/' || pg_temp.hex(i, 7),
         'email_verified', true,
         'locale', pg_temp.one(i, 8, ARRAY['en', 'en-GB', 'de', 'fr', 'es', 'pt-BR', 'ja', 'nl']),
         'timezone', pg_temp.one(i, 9, ARRAY['Europe/Berlin', 'America/New_York', 'Europe/London',
                                             'Asia/Tokyo', 'America/Los_Angeles', 'Europe/Paris']),
         'onboarding', jsonb_build_object('completed', pg_temp.u(i, 11) < 0.9,
                                          'step', pg_temp.pick(i, 12, 6))),
       false, created, created + interval '1 day' * pg_temp.pick(i, 13, 300),
       '+4470' || lpad((i * 7919 % 10000000)::text, 7, '0')
FROM (SELECT i, pg_temp.first_name(i, 1) AS fn, pg_temp.last_name(i, 2) AS ln,
             pg_temp.ago(i, 4, interval '3 years') AS created, pg_temp.rb(i, 14) AS b
      FROM generate_series(0, pg_temp.n('users') - 1) AS i OFFSET 0) AS g;

INSERT INTO public.contacts (id, user_id, first_name, last_name, email, phone, company, title,
                             lifecycle_stage, tags, notes, custom_fields, created_at, updated_at)
SELECT pg_temp.uid('contact', i), pg_temp.user_id(pg_temp.owner(i, 10)), fn, ln,
       lower(translate(fn, 'ü', 'u')) || '.' || lower(translate(ln, 'ü'' ', 'u')) || '@'
         || lower(replace(co, ' ', '')) || '.com',
       '+1' || (200 + pg_temp.pick(i, 15, 800))
         || lpad(pg_temp.pick(i, 16, 10000000)::text, 7, '0'),
       co,
       pg_temp.one(i, 17, ARRAY['CEO', 'CTO', 'VP Sales', 'Head of Marketing', 'Account Executive',
                                'Founder', 'Product Manager', 'Engineer', 'Procurement Lead', 'CFO',
                                'Director of Operations', 'Consultant', 'Recruiter', 'Designer',
                                'Analyst', 'COO']),
       pg_temp.one(i, 18, ARRAY['lead', 'lead', 'prospect', 'qualified', 'customer', 'customer',
                                'churned', 'partner']),
       -- zero to three consecutive tags
       (ARRAY['vip', 'investor', 'warm', 'cold', 'newsletter', 'event-2024', 'event-2025',
              'partner', 'renewal', 'enterprise', 'smb', 'churn-risk', 'beta', 'advisor', 'press',
              'hiring'])[1 + pg_temp.pick(i, 19, 16)
                         :pg_temp.pick(i, 19, 16) + pg_temp.pick(i, 20, 4)],
       CASE WHEN pg_temp.u(i, 21) < 0.6 THEN pg_temp.para(b) END,
       jsonb_build_object(
         'source', pg_temp.one(i, 22, ARRAY['linkedin', 'referral', 'website', 'conference',
                                            'cold_outreach', 'import']),
         'linkedin_url', 'https://www.linkedin.com/in/' || lower(translate(fn, 'ü', 'u')) || '-'
                         || left(pg_temp.hex(i, 23), 8),
         'lead_score', pg_temp.pick(i, 24, 100),
         'birthday', CASE WHEN pg_temp.u(i, 25) < 0.2
                       THEN to_char(date '1960-01-01' + pg_temp.pick(i, 26, 14000)::int,
                                    'YYYY-MM-DD')
                     END),
       created, created + interval '1 hour' * pg_temp.pick(i, 27, 2000)
FROM (SELECT i, pg_temp.first_name(i, 28) AS fn, pg_temp.last_name(i, 29) AS ln,
             pg_temp.company(i, 30) AS co, pg_temp.rb(i, 31) AS b,
             pg_temp.ago(i, 32, interval '3 years') AS created
      FROM generate_series(0, pg_temp.n('contacts') - 1) AS i OFFSET 0) AS g;

INSERT INTO public.interactions (id, user_id, contact_id, kind, subject, body, occurred_at,
                                 source_id, metadata, created_at)
SELECT i + 1, pg_temp.user_id(pg_temp.owner(c, 10)), pg_temp.uid('contact', c),
       kind::public.interaction_kind, pg_temp.s8(b, 0),
       pg_temp.s16(b, 8) || ' ' || pg_temp.s16(b, 24)
         || CASE WHEN pg_temp.u(i, 33) < 0.5 THEN ' ' || pg_temp.s16(b, 40) ELSE '' END,
       occurred,
       CASE kind WHEN 'email' THEN '<' || pg_temp.hex(i, 34) || '@mail.gmail.com>'
                 WHEN 'meeting' THEN left(pg_temp.hex(i, 34), 26) END,
       jsonb_build_object(
         'direction', CASE WHEN pg_temp.u(i, 35) < 0.5 THEN 'inbound' ELSE 'outbound' END,
         'duration_min', CASE WHEN kind IN ('call', 'meeting') THEN 5 + pg_temp.pick(i, 36, 55) END,
         'sentiment', round((pg_temp.u(i, 37) * 2 - 1)::numeric, 2),
         'logged_by', CASE WHEN pg_temp.u(i, 38) < 0.7 THEN 'sync' ELSE 'manual' END),
       occurred + interval '1 second' * pg_temp.pick(i, 39, 600)
FROM (SELECT i, pg_temp.pick(i, 40, pg_temp.n('contacts')) AS c,
             pg_temp.one(i, 41, ARRAY['email', 'email', 'email', 'call', 'meeting', 'note', 'sms',
                                      'linkedin']) AS kind,
             pg_temp.rb(i, 42) AS b, pg_temp.ago(i, 43, interval '2 years') AS occurred
      FROM generate_series(0, pg_temp.n('interactions') - 1) AS i OFFSET 0) AS g;

-- Provider webhooks and sync payloads, ~1 KB each, spread evenly over three years.
INSERT INTO public.raw_events (id, user_id, provider, event_type, external_id, payload,
                               occurred_at, ingested_at)
SELECT i + 1, pg_temp.user_id(pg_temp.owner(i, 50)), provider,
       CASE provider
         WHEN 'gmail' THEN
           CASE WHEN pg_temp.u(i, 51) < 0.7 THEN 'message.received' ELSE 'message.sent' END
         WHEN 'google_calendar' THEN 'event.updated'
         WHEN 'slack' THEN 'message.channels'
         ELSE hs_type END,
       left(x1, 16),
       CASE provider
       WHEN 'gmail' THEN jsonb_build_object(
         'id', left(x1, 16), 'threadId', left(x2, 16),
         'historyId', 1000000 + pg_temp.pick(i, 52, 90000000),
         'labelIds', jsonb_build_array(
           'INBOX',
           pg_temp.one(i, 53, ARRAY['IMPORTANT', 'CATEGORY_PERSONAL', 'CATEGORY_UPDATES',
                                    'CATEGORY_PROMOTIONS', 'UNREAD', 'STARRED']),
           'Label_' || pg_temp.pick(i, 54, 40)),
         'snippet', pg_temp.s16(b1, 0),
         'sizeEstimate', 2000 + pg_temp.pick(i, 55, 60000),
         'internalDate', (extract(epoch FROM occurred) * 1000)::bigint::text,
         'payload', jsonb_build_object(
           'mimeType', 'multipart/alternative',
           'headers', jsonb_build_array(
             jsonb_build_object('name', 'From',
                                'value', fn || ' ' || ln || ' <' || lower(fn) || '@' || dom || '>'),
             jsonb_build_object('name', 'To', 'value', 'me@' || dom),
             jsonb_build_object('name', 'Subject', 'value', pg_temp.s8(b1, 16)),
             jsonb_build_object('name', 'Date',
                                'value', to_char(occurred, 'Dy, DD Mon YYYY HH24:MI:SS "+0000"')),
             jsonb_build_object('name', 'Message-ID', 'value', '<' || x2 || '@mail.gmail.com>')),
           'parts', jsonb_build_array(jsonb_build_object(
             'partId', '0', 'mimeType', 'text/plain',
             'body', jsonb_build_object(
               'size', 400 + pg_temp.pick(i, 56, 4000),
               'data', encode(convert_to(pg_temp.s16(b1, 24), 'UTF8'), 'base64'))))))
       WHEN 'google_calendar' THEN jsonb_build_object(
         'kind', 'calendar#event',
         'etag', '"' || (3000000000000000 + pg_temp.pick(i, 57, 999999999999999)) || '"',
         'id', left(x1, 26), 'status', 'confirmed',
         'htmlLink', 'https://www.google.com/calendar/event?eid=' || x2,
         'summary', pg_temp.s8(b1, 0),
         'description', pg_temp.s16(b1, 8) || ' ' || pg_temp.s16(b1, 24),
         'location', CASE WHEN pg_temp.u(i, 58) < 0.5 THEN 'Zoom' ELSE co || ' HQ' END,
         'organizer', jsonb_build_object('email', lower(fn) || '@' || dom,
                                         'displayName', fn || ' ' || ln),
         'start', jsonb_build_object('dateTime', pg_temp.iso(occurred), 'timeZone', 'UTC'),
         'end', jsonb_build_object('dateTime', pg_temp.iso(occurred + interval '30 minutes'),
                                   'timeZone', 'UTC'),
         'attendees', jsonb_build_array(
           jsonb_build_object('email', 'me@' || dom, 'self', true, 'responseStatus', 'accepted'),
           jsonb_build_object('email', lower(ln) || '@' || dom, 'responseStatus',
             pg_temp.one(i, 59, ARRAY['accepted', 'tentative', 'needsAction', 'declined']))),
         'conferenceData', jsonb_build_object(
           'conferenceId', meet,
           'entryPoints', jsonb_build_array(jsonb_build_object(
             'entryPointType', 'video', 'uri', 'https://meet.google.com/' || meet))),
         'reminders', jsonb_build_object('useDefault', true))
       WHEN 'slack' THEN jsonb_build_object(
         'type', 'message', 'channel', 'C' || upper(left(x1, 10)),
         'user', 'U' || upper(left(x2, 10)),
         'team', 'T' || upper(left(pg_temp.hex(pg_temp.owner(i, 50), 60), 10)),
         'text', pg_temp.para(b1),
         'ts', extract(epoch FROM occurred)::bigint || '.'
               || lpad(pg_temp.pick(i, 61, 1000000)::text, 6, '0'),
         'client_msg_id', pg_temp.uid('slack', i),
         'blocks', jsonb_build_array(jsonb_build_object(
           'type', 'rich_text', 'block_id', left(x2, 5),
           'elements', jsonb_build_array(jsonb_build_object(
             'type', 'rich_text_section',
             'elements', jsonb_build_array(jsonb_build_object(
               'type', 'text', 'text', pg_temp.s16(b1, 8))))))))
       ELSE jsonb_build_object(
         'eventId', pg_temp.pick(i, 62, 4000000000),
         'subscriptionId', 1000000 + pg_temp.pick(i, 63, 500),
         'portalId', 20000000 + pg_temp.pick(pg_temp.owner(i, 50), 64, 9000000),
         'appId', 1337421,
         'occurredAt', (extract(epoch FROM occurred) * 1000)::bigint,
         'subscriptionType', hs_type,
         'attemptNumber', pg_temp.pick(i, 65, 3),
         'objectId', 5000 + pg_temp.pick(i, 66, 90000000),
         'changeSource', pg_temp.one(i, 67, ARRAY['CRM_UI', 'INTEGRATION', 'IMPORT', 'API']),
         'properties', jsonb_build_object(
           'firstname', fn, 'lastname', ln, 'company', co,
           'email', lower(fn) || '.' || lower(ln) || '@' || dom,
           'lifecyclestage', pg_temp.one(i, 68, ARRAY['lead', 'marketingqualifiedlead',
                                                      'salesqualifiedlead', 'opportunity',
                                                      'customer']),
           'hs_object_id', 5000 + pg_temp.pick(i, 66, 90000000),
           'notes_last_contacted', pg_temp.iso(occurred - interval '3 days'),
           'description', pg_temp.s16(b1, 0) || ' ' || pg_temp.s16(b1, 16) || ' '
                          || pg_temp.s16(b1, 32)))
       END,
       occurred, occurred + interval '1 second' * (1 + pg_temp.pick(i, 69, 900))
FROM (SELECT i, provider, hs_type, x1, x2, b1, fn, ln, co, occurred,
             lower(replace(co, ' ', '')) || '.com' AS dom,
             left(x1, 3) || '-' || substr(x1, 4, 4) || '-' || substr(x1, 8, 3) AS meet
      FROM (SELECT i,
                   pg_temp.one(i, 73, ARRAY['gmail', 'gmail', 'gmail', 'google_calendar', 'slack',
                                            'hubspot']) AS provider,
                   pg_temp.one(i, 74, ARRAY['contact.creation', 'contact.propertyChange',
                                            'deal.creation', 'deal.propertyChange']) AS hs_type,
                   pg_temp.hex(i, 75) AS x1, pg_temp.hex(i, 76) AS x2, pg_temp.rb(i, 77) AS b1,
                   pg_temp.first_name(i, 78) AS fn, pg_temp.last_name(i, 79) AS ln,
                   pg_temp.company(i, 80) AS co,
                   pg_temp.ago(i, 81, interval '1095 days') AS occurred
            FROM generate_series(0, pg_temp.n('raw_events') - 1) AS i OFFSET 0) AS r
      OFFSET 0) AS g;

-- Background jobs over the last year: old ones finished, recent ones in every state.
INSERT INTO public.jobs (id, user_id, kind, status, payload, attempts, last_error, created_at,
                         updated_at)
SELECT i + 1, pg_temp.user_id(pg_temp.owner(i, 90)), kind, status,
       jsonb_build_object(
         'batch_id', pg_temp.uid('batch', pg_temp.pick(i, 91, 1000000)),
         'cursor', pg_temp.hex(i, 92),
         'requested_by', CASE WHEN pg_temp.u(i, 93) < 0.8 THEN 'scheduler' ELSE 'user' END,
         'options', jsonb_build_object('since', pg_temp.iso(created - interval '1 day'),
                                       'limit', 100 * (1 + pg_temp.pick(i, 94, 10)),
                                       'dry_run', pg_temp.u(i, 95) < 0.05)),
       CASE status WHEN 'queued' THEN 0 WHEN 'failed' THEN 3
                   ELSE 1 + (pg_temp.u(i, 96) < 0.1)::int END,
       CASE WHEN status = 'failed'
         THEN pg_temp.one(i, 97, ARRAY['timeout after 30s', 'upstream 429 Too Many Requests',
                                       'invalid_grant: token expired or revoked',
                                       'connection reset by peer',
                                       'quota exceeded for embeddings']) END,
       created,
       CASE WHEN status = 'queued' THEN created
            ELSE created + interval '1 second' * (1 + pg_temp.pick(i, 98, 1800)) END
FROM (SELECT i, created,
             pg_temp.one(i, 99, ARRAY['gmail_sync', 'calendar_sync', 'embed_contact',
                                      'generate_insight', 'slack_sync', 'hubspot_import',
                                      'send_digest', 'cleanup']) AS kind,
             CASE WHEN created < pg_temp.as_of() - interval '2 days'
                  THEN CASE WHEN pg_temp.u(i, 100) < 0.93 THEN 'completed' ELSE 'failed' END
                  ELSE pg_temp.one(i, 100, ARRAY['queued', 'running', 'completed', 'completed',
                                                 'failed'])
             END AS status
      FROM (SELECT i, pg_temp.ago(i, 101, interval '365 days') AS created
            FROM generate_series(0, pg_temp.n('jobs') - 1) AS i OFFSET 0) AS t
      OFFSET 0) AS g;

-- 70% of documents are about a contact, and belong to that contact's user.
INSERT INTO public.documents (id, user_id, contact_id, title, mime_type, source, body,
                              created_at, updated_at)
SELECT pg_temp.uid('document', i),
       pg_temp.user_id(CASE WHEN c IS NULL THEN pg_temp.owner(i, 110)
                            ELSE pg_temp.owner(c, 10) END),
       pg_temp.uid('contact', c), pg_temp.s8(b1, 0),
       pg_temp.one(i, 111, ARRAY['text/markdown', 'text/plain', 'application/pdf', 'text/html']),
       pg_temp.one(i, 112, ARRAY['upload', 'google_drive', 'email_attachment', 'notion']),
       concat_ws(E'\n\n', pg_temp.para(b1), pg_temp.para(b2),
                 CASE WHEN np > 2 THEN pg_temp.para(b3) END,
                 CASE WHEN np > 3 THEN pg_temp.para(b4) END,
                 CASE WHEN np > 4 THEN pg_temp.para(b5) END,
                 CASE WHEN np > 5 THEN pg_temp.para(b6) END,
                 CASE WHEN np > 6 THEN pg_temp.para(b7) END,
                 CASE WHEN np > 7 THEN pg_temp.para(b8) END),
       created, created + interval '1 hour' * pg_temp.pick(i, 113, 500)
FROM (SELECT i,
             CASE WHEN pg_temp.u(i, 114) < 0.7
                  THEN pg_temp.pick(i, 115, pg_temp.n('contacts')) END AS c,
             2 + pg_temp.pick(i, 116, 7) AS np,
             pg_temp.rb(i, 121) AS b1, pg_temp.rb(i, 122) AS b2, pg_temp.rb(i, 123) AS b3,
             pg_temp.rb(i, 124) AS b4, pg_temp.rb(i, 125) AS b5, pg_temp.rb(i, 126) AS b6,
             pg_temp.rb(i, 127) AS b7, pg_temp.rb(i, 128) AS b8,
             pg_temp.ago(i, 117, interval '2 years') AS created
      FROM generate_series(0, pg_temp.n('documents') - 1) AS i OFFSET 0) AS g;

-- Half of the embeddings are of contacts, half of documents; owners follow the embedded row
-- (the document branch repeats the documents insert's choice of owner).
INSERT INTO public.embeddings (id, user_id, owner_type, owner_id, model, embedding,
                               content_sha256, created_at)
SELECT i + 1,
       pg_temp.user_id(
         CASE WHEN is_contact THEN pg_temp.owner(o, 10)
              WHEN pg_temp.u(o, 114) < 0.7
                THEN pg_temp.owner(pg_temp.pick(o, 115, pg_temp.n('contacts')), 10)
              ELSE pg_temp.owner(o, 110) END),
       CASE WHEN is_contact THEN 'contact' ELSE 'document' END,
       pg_temp.uid(CASE WHEN is_contact THEN 'contact' ELSE 'document' END, o)::text,
       'bge-small-en-v1.5',
       ARRAY(SELECT ((pg_temp.u(i * 384 + k, 130) * 2 - 1) * 0.12)::real
             FROM generate_series(0, 383) AS k),
       encode(sha256(int8send(i) || int8send(o)), 'hex'),
       pg_temp.ago(i, 131, interval '2 years')
FROM (SELECT i, i % 2 = 0 AS is_contact,
             CASE WHEN i % 2 = 0 THEN pg_temp.pick(i, 132, pg_temp.n('contacts'))
                  ELSE pg_temp.pick(i, 132, pg_temp.n('documents')) END AS o
      FROM generate_series(0, pg_temp.n('embeddings') - 1) AS i OFFSET 0) AS g;

INSERT INTO public.ai_insights (id, user_id, contact_id, kind, title, body, score, model,
                                metadata, dismissed, created_at)
SELECT pg_temp.uid('insight', i), pg_temp.user_id(pg_temp.owner(c, 10)),
       CASE WHEN pg_temp.u(i, 140) < 0.9 THEN pg_temp.uid('contact', c) END,
       pg_temp.one(i, 141, ARRAY['next_best_action', 'sentiment', 'churn_risk', 'summary',
                                 'follow_up', 'deal_risk']),
       pg_temp.s8(b, 0),
       pg_temp.s16(b, 8) || ' ' || pg_temp.s16(b, 24) || ' ' || pg_temp.s16(b, 40),
       round(pg_temp.u(i, 142)::numeric, 3)::real,
       pg_temp.one(i, 143, ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku',
                                 'claude-3-5-sonnet']),
       jsonb_build_object(
         'prompt_tokens', 200 + pg_temp.pick(i, 144, 3000),
         'completion_tokens', 50 + pg_temp.pick(i, 145, 600),
         'latency_ms', 300 + pg_temp.pick(i, 146, 9000),
         'source_interaction_ids', jsonb_build_array(
           1 + pg_temp.pick(i, 147, pg_temp.n('interactions')),
           1 + pg_temp.pick(i, 148, pg_temp.n('interactions')))),
       pg_temp.u(i, 149) < 0.2, pg_temp.ago(i, 150, interval '1 year')
FROM (SELECT i, pg_temp.pick(i, 151, pg_temp.n('contacts')) AS c, pg_temp.rb(i, 152) AS b
      FROM generate_series(0, pg_temp.n('ai_insights') - 1) AS i OFFSET 0) AS g;

INSERT INTO public.threads (id, user_id, contact_id, title, created_at, updated_at)
SELECT pg_temp.uid('thread', i), pg_temp.user_id(pg_temp.thread_owner(i)),
       pg_temp.uid('contact', pg_temp.thread_contact(i)), pg_temp.s8(b, 0),
       created, created + interval '1 minute' * pg_temp.pick(i, 160, 10000)
FROM (SELECT i, pg_temp.rb(i, 161) AS b, pg_temp.ago(i, 162, interval '1 year') AS created
      FROM generate_series(0, pg_temp.n('threads') - 1) AS i OFFSET 0) AS g;

INSERT INTO public.messages (id, thread_id, user_id, role, content, token_count, created_at)
SELECT i + 1, pg_temp.uid('thread', t), pg_temp.user_id(pg_temp.thread_owner(t)), role, content,
       length(content) / 4, pg_temp.ago(i, 170, interval '1 year')
FROM (SELECT i, t, role,
             CASE role
               WHEN 'user' THEN initcap(pg_temp.s16(b1, 0))
               WHEN 'assistant' THEN pg_temp.para(b1)
                 || CASE WHEN pg_temp.u(i, 171) < 0.5 THEN E'\n\n' || pg_temp.para(b2) ELSE '' END
               WHEN 'tool' THEN '{"ok": true, "items": ' || pg_temp.pick(i, 172, 50)
                 || ', "summary": "' || pg_temp.s16(b1, 16) || '"}'
               ELSE 'You are OmniCRM''s assistant. Answer using the contact history. '
                 || pg_temp.s16(b1, 32)
             END AS content
      FROM (SELECT i, pg_temp.pick(i, 173, pg_temp.n('threads')) AS t,
                   pg_temp.one(i, 174, ARRAY['user', 'assistant', 'user', 'assistant', 'tool',
                                             'assistant', 'user', 'system']) AS role,
                   pg_temp.rb(i, 175) AS b1, pg_temp.rb(i, 176) AS b2
            FROM generate_series(0, pg_temp.n('messages') - 1) AS i OFFSET 0) AS r
      OFFSET 0) AS g;

-- Message m belongs to thread pick(m, 173, ...), as in the messages insert.
INSERT INTO public.tool_invocations (id, message_id, user_id, tool_name, arguments, result,
                                     status, duration_ms, created_at)
SELECT i + 1, m + 1,
       pg_temp.user_id(pg_temp.thread_owner(pg_temp.pick(m, 173, pg_temp.n('threads')))),
       tool,
       jsonb_build_object(
         'query', pg_temp.s8(b, 0), 'limit', 5 + pg_temp.pick(i, 180, 20),
         'contact_id', pg_temp.uid('contact', pg_temp.pick(i, 181, pg_temp.n('contacts')))),
       CASE WHEN status = 'ok' THEN jsonb_build_object('count', pg_temp.pick(i, 182, 30),
                                                       'preview', pg_temp.s16(b, 8),
                                                       'next_cursor', pg_temp.hex(i, 183))
            WHEN status = 'error' THEN jsonb_build_object('error', 'tool timed out') END,
       status, 20 + pg_temp.pick(i, 184, 5000), pg_temp.ago(i, 185, interval '1 year')
FROM (SELECT i, pg_temp.pick(i, 186, pg_temp.n('messages')) AS m, pg_temp.rb(i, 187) AS b,
             pg_temp.one(i, 188, ARRAY['search_contacts', 'get_interactions', 'draft_email',
                                       'create_task', 'web_search', 'summarize_thread']) AS tool,
             pg_temp.one(i, 189, ARRAY['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'error',
                                       'pending']) AS status
      FROM generate_series(0, pg_temp.n('tool_invocations') - 1) AS i OFFSET 0) AS g;

-- Tokens look app-encrypted: a version prefix and base64 of random bytes.
INSERT INTO public.user_integrations (user_id, provider, access_token, refresh_token, scopes,
                                      expires_at, created_at, updated_at)
SELECT pg_temp.user_id(i), p.provider,
       'v1:' || translate(encode(pg_temp.rb(j, 190) || pg_temp.rb(j, 191), 'base64'), E'\n', ''),
       'v1:' || translate(encode(pg_temp.rb(j, 192), 'base64'), E'\n', ''),
       p.scopes, pg_temp.as_of() + interval '1 minute' * (pg_temp.pick(j, 193, 120) - 30),
       pg_temp.ago(j, 194, interval '2 years'), pg_temp.ago(j, 195, interval '7 days')
FROM generate_series(0, pg_temp.n('users') - 1) AS i
CROSS JOIN (VALUES (0, 'google', 0.95, ARRAY['gmail.readonly', 'calendar.readonly',
                                             'drive.readonly']),
                   (1, 'microsoft', 0.3, ARRAY['Mail.Read', 'Calendars.Read', 'offline_access']),
                   (2, 'slack', 0.5, ARRAY['channels:history', 'users:read']),
                   (3, 'hubspot', 0.35, ARRAY['crm.objects.contacts.read']))
  AS p (k, provider, share, scopes)
CROSS JOIN LATERAL (SELECT i * 4 + p.k AS j) AS x
WHERE pg_temp.u(j, 196) < p.share;

INSERT INTO public.user_sync_prefs (user_id, gmail_labels, calendar_ids, drive_folders,
                                    sync_enabled, last_synced_at, updated_at)
SELECT pg_temp.user_id(i),
       ARRAY['INBOX', 'SENT']
         || (ARRAY['IMPORTANT', 'Label_' || pg_temp.pick(i, 200, 40), 'Clients', 'Invoices',
                   'CATEGORY_PERSONAL'])[1:pg_temp.pick(i, 201, 6)],
       ARRAY['primary']
         || CASE WHEN pg_temp.u(i, 202) < 0.4
                 THEN ARRAY[left(pg_temp.hex(i, 203), 26) || '@group.calendar.google.com']
                 ELSE '{}'::text[] END,
       (ARRAY['1' || left(pg_temp.hex(i, 204), 32), '1' || left(pg_temp.hex(i, 205), 32),
              '1' || left(pg_temp.hex(i, 206), 32)])[1:pg_temp.pick(i, 207, 4)],
       pg_temp.u(i, 208) < 0.9, pg_temp.ago(i, 209, interval '1 day'),
       pg_temp.ago(i, 210, interval '90 days')
FROM generate_series(0, pg_temp.n('users') - 1) AS i;

INSERT INTO public.sync_audit (id, user_id, provider, action, status, items, details, created_at)
SELECT i + 1, pg_temp.user_id(pg_temp.owner(i, 220)), provider, action, status,
       CASE WHEN status = 'error' THEN 0 ELSE pg_temp.pick(i, 221, 500) END,
       jsonb_build_object(
         'cursor', pg_temp.hex(i, 222), 'request_id', pg_temp.uid('request', i),
         'duration_ms', 50 + pg_temp.pick(i, 223, 30000),
         'api_calls', 1 + pg_temp.pick(i, 224, 40),
         'errors', CASE WHEN status = 'error'
                     THEN jsonb_build_array(jsonb_build_object(
                       'code', pg_temp.one(i, 225, ARRAY[401, 403, 429, 500, 503]),
                       'message', 'upstream error while syncing ' || provider))
                     ELSE '[]'::jsonb END),
       pg_temp.ago(i, 226, interval '180 days')
FROM (SELECT i,
             pg_temp.one(i, 227, ARRAY['google', 'google', 'microsoft', 'slack',
                                       'hubspot']) AS provider,
             pg_temp.one(i, 228, ARRAY['sync', 'sync', 'sync', 'token_refresh', 'webhook',
                                       'backfill']) AS action,
             pg_temp.one(i, 229, ARRAY['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'partial',
                                       'error']) AS status
      FROM generate_series(0, pg_temp.n('sync_audit') - 1) AS i OFFSET 0) AS g;

-- Sessions last 14 days and were created over the last 30: about half have expired.
INSERT INTO public.sessions (id, user_id, user_agent, ip, created_at, expires_at)
SELECT pg_temp.uid('session', i), pg_temp.user_id(pg_temp.owner(i, 230)),
       pg_temp.one(i, 231, ARRAY[
         'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) '
           || 'Chrome/126.0 Safari/537.36',
         'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
           || 'Chrome/125.0 Safari/537.36',
         'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 '
           || '(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
         'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
         'OmniCRM/2.4.1 (Android 14; Pixel 8)',
         'OmniCRM/2.4.0 (iOS 17.5; iPhone15,2)']),
       ((1 + pg_temp.pick(i, 232, 223)) || '.' || pg_temp.pick(i, 233, 256) || '.'
         || pg_temp.pick(i, 234, 256) || '.' || (1 + pg_temp.pick(i, 235, 254)))::inet,
       created, created + interval '14 days'
FROM (SELECT i, pg_temp.ago(i, 236, interval '30 days') AS created
      FROM generate_series(0, pg_temp.n('sessions') - 1) AS i OFFSET 0) AS g;
