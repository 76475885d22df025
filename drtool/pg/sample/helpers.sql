-- Session-local generator functions for the sample data. Every value is a pure function of
-- (seed, salt, row number), never of random() or evaluation order, so a load is reproducible
-- whatever plan the server picks. All are single-expression SQL functions, which the planner
-- inlines only if the body is no more volatile than declared: hence i::text rather than a
-- (stable) bigint || text, and STABLE where timestamptz arithmetic is involved.
-- Placeholders {{...}} are filled in by drtool.pg.sample.

-- 64 pseudo-random bits. hashint8extended is stable across versions and platforms: hash
-- partitioning relies on it.
CREATE FUNCTION pg_temp.h(i bigint, salt int) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT hashint8extended(i, {{SEED_BASE}} + salt) $$;

-- Uniform in [0, 1) from the top 53 bits.
CREATE FUNCTION pg_temp.u(i bigint, salt int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT ((pg_temp.h(i, salt) >> 11) & 9007199254740991)::float8 / 9007199254740992.0 $$;

-- Uniform integer in [0, n).
CREATE FUNCTION pg_temp.pick(i bigint, salt int, n bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (pg_temp.h(i, salt) & 9223372036854775807) % n $$;

-- One of the choices, uniformly.
CREATE FUNCTION pg_temp.one(i bigint, salt int, choices anyarray) RETURNS anyelement
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT choices[1 + pg_temp.pick(i, salt, cardinality(choices))] $$;

-- 64 pseudo-random bytes, for text built byte by byte.
CREATE FUNCTION pg_temp.rb(i bigint, salt int) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT sha512(int8send(i) || int4send(salt) || int8send({{SEED}})) $$;

-- 32 hex digits.
CREATE FUNCTION pg_temp.hex(i bigint, salt int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT md5('{{SEED}}:' || salt::text || ':' || i::text) $$;

-- Deterministic uuid per (kind, number): the same rows get the same ids in every load.
CREATE FUNCTION pg_temp.uid(kind text, i bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT md5('{{SEED}}:' || kind || ':' || i::text)::uuid $$;

CREATE FUNCTION pg_temp.user_id(i bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT pg_temp.uid('user', i) $$;

-- Skewed ownership: the first {{N_HEAVY}} users (top 1%) own ~30% of the rows, user 0 the most;
-- the rest share 70% with a milder skew.
CREATE FUNCTION pg_temp.owner(i bigint, salt int) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN pg_temp.u(i, salt) < 0.30
      THEN floor({{N_HEAVY}} * power(pg_temp.u(i, salt) / 0.30, 2))::bigint
    ELSE {{N_HEAVY}} + floor(({{N_USERS}} - {{N_HEAVY}})
                             * power((pg_temp.u(i, salt) - 0.30) / 0.70, 1.25))::bigint
  END
$$;

-- A point in the span before the load's reference time.
CREATE FUNCTION pg_temp.ago(i bigint, salt int, span interval) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT '{{AS_OF}}'::timestamptz - pg_temp.u(i, salt) * span $$;

-- ISO 8601 in UTC, as APIs write timestamps (the load runs with TimeZone = UTC).
CREATE FUNCTION pg_temp.iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

CREATE FUNCTION pg_temp.as_of() RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '{{AS_OF}}'::timestamptz $$;

CREATE FUNCTION pg_temp.n(tbl text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE tbl {{COUNTS}} END $$;

-- Word k of a 256-word CRM vocabulary, chosen by byte k of b. Four arrays of 64: subscripting
-- a text[] walks its elements, so short arrays make the hottest function ~2x faster.
CREATE FUNCTION pg_temp.w(b bytea, k int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE get_byte(b, k) >> 6
  WHEN 0 THEN (ARRAY[
    'account', 'action', 'agenda', 'agreement', 'analysis', 'annual', 'approval', 'april', 'asap',
    'asset', 'attached', 'available', 'back', 'balance', 'before', 'below', 'best', 'beta',
    'board', 'book', 'brief', 'budget', 'build', 'business', 'call', 'calendar', 'campaign',
    'can', 'card', 'case', 'catch', 'change', 'check', 'client', 'close', 'coffee', 'colleague',
    'committee', 'company', 'compare', 'confirm', 'contract', 'copy', 'cost', 'could', 'customer',
    'data', 'date', 'deadline', 'deal', 'decision', 'deck', 'demo', 'design', 'detail',
    'discount', 'discuss', 'document', 'done', 'draft', 'early', 'email', 'end', 'engineering'
  ])[1 + (get_byte(b, k) & 63)]
  WHEN 1 THEN (ARRAY[
    'estimate', 'event', 'expect', 'feature', 'feedback', 'figure', 'file', 'final', 'finance',
    'follow', 'forecast', 'forward', 'friday', 'from', 'goal', 'great', 'growth', 'happy', 'have',
    'help', 'hiring', 'idea', 'impact', 'important', 'include', 'info', 'initial', 'integration',
    'intro', 'invoice', 'issue', 'item', 'just', 'keep', 'kickoff', 'know', 'launch', 'lead',
    'legal', 'let', 'license', 'list', 'look', 'loop', 'manager', 'march', 'market', 'meeting',
    'migration', 'milestone', 'minutes', 'monday', 'month', 'more', 'need', 'network', 'new',
    'next', 'note', 'offer', 'onboarding', 'open', 'option', 'order'
  ])[1 + (get_byte(b, k) & 63)]
  WHEN 2 THEN (ARRAY[
    'our', 'outline', 'owner', 'partner', 'payment', 'pending', 'people', 'pilot', 'plan',
    'platform', 'please', 'point', 'policy', 'price', 'pricing', 'priority', 'process', 'product',
    'project', 'proposal', 'q3', 'q4', 'quarter', 'question', 'quick', 'quote', 'ready', 'reason',
    'recap', 'refund', 'regarding', 'release', 'remind', 'renewal', 'reply', 'report', 'request',
    'require', 'review', 'risk', 'roadmap', 'sales', 'sample', 'schedule', 'scope', 'security',
    'send', 'service', 'share', 'sheet', 'sign', 'slides', 'soon', 'spec', 'sprint', 'staff',
    'start', 'status', 'step', 'still', 'summary', 'support', 'sure', 'sync'
  ])[1 + (get_byte(b, k) & 63)]
  WHEN 3 THEN (ARRAY[
    'system', 'target', 'task', 'team', 'terms', 'thanks', 'that', 'the', 'this', 'thursday',
    'ticket', 'time', 'timeline', 'today', 'tomorrow', 'topic', 'track', 'training', 'trial',
    'tuesday', 'update', 'upgrade', 'usage', 'user', 'value', 'vendor', 'version', 'volume',
    'wednesday', 'week', 'will', 'win', 'with', 'work', 'workflow', 'workshop', 'would', 'year',
    'yes', 'you', 'your', 'zoom', 'api', 'sso', 'crm', 'kpi', 'okr', 'roi', 'and', 'for', 'to',
    'we', 'on', 'in', 'of', 'a', 'is', 'it', 'at', 'as', 'by', 'or', 'be', 'up'
  ])[1 + (get_byte(b, k) & 63)]
END $$;

-- Sixteen words from bytes o..o+15 of b; callers pass a column, never an expression, because
-- an inlined expression argument would be evaluated once per word.
CREATE FUNCTION pg_temp.s16(b bytea, o int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT
  pg_temp.w(b, o) || ' ' || pg_temp.w(b, o + 1) || ' ' || pg_temp.w(b, o + 2) || ' ' ||
  pg_temp.w(b, o + 3) || ' ' || pg_temp.w(b, o + 4) || ' ' || pg_temp.w(b, o + 5) || ', ' ||
  pg_temp.w(b, o + 6) || ' ' || pg_temp.w(b, o + 7) || ' ' || pg_temp.w(b, o + 8) || ' ' ||
  pg_temp.w(b, o + 9) || ' ' || pg_temp.w(b, o + 10) || ' ' || pg_temp.w(b, o + 11) || ' ' ||
  pg_temp.w(b, o + 12) || ' ' || pg_temp.w(b, o + 13) || ' ' || pg_temp.w(b, o + 14) || ' ' ||
  pg_temp.w(b, o + 15) || '.'
$$;

-- Eight words, for subjects and titles.
CREATE FUNCTION pg_temp.s8(b bytea, o int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT
  initcap(pg_temp.w(b, o)) || ' ' || pg_temp.w(b, o + 1) || ' ' || pg_temp.w(b, o + 2) || ' ' ||
  pg_temp.w(b, o + 3) || ' ' || pg_temp.w(b, o + 4) || ' ' || pg_temp.w(b, o + 5) || ' ' ||
  pg_temp.w(b, o + 6) || ' ' || pg_temp.w(b, o + 7)
$$;

-- A paragraph of 4 sentences (64 words) from a 64-byte column.
CREATE FUNCTION pg_temp.para(b bytea) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT
  initcap(pg_temp.s16(b, 0)) || ' ' || pg_temp.s16(b, 16) || ' ' ||
  pg_temp.s16(b, 32) || ' ' || pg_temp.s16(b, 48)
$$;

CREATE FUNCTION pg_temp.first_name(i bigint, salt int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (ARRAY[
  'Ava','Ben','Chloe','Daniel','Elena','Farid','Grace','Hiro','Isabel','Jonas','Kira','Liam',
  'Maya','Noah','Olivia','Pablo','Quinn','Rosa','Sam','Tara','Umar','Vera','Wes','Xin',
  'Yara','Zoe','Amir','Bea','Carlos','Dana','Emil','Fatima','Gabriel','Hana','Ivan','Julia',
  'Kofi','Lena','Mateo','Nina','Oscar','Priya','Rafael','Sofia','Tomas','Uma','Victor','Wen',
  'Aisha','Bruno','Camila','Diego','Eva','Felix','Greta','Hugo','Ines','Jamal','Karin','Luca',
  'Mia','Nils','Omar','Paula'
])[1 + pg_temp.pick(i, salt, 64)] $$;

CREATE FUNCTION pg_temp.last_name(i bigint, salt int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (ARRAY[
  'Smith','Garcia','Müller','Nguyen','Kowalski','Rossi','Tanaka','Okafor','Silva','Johansson',
  'Dubois','Novak','Hernandez','Kim','Patel','Cohen','Schmidt','Ivanova','Larsen','Moreau',
  'O''Brien','Fischer','Costa','Jensen','Lopez','Wong','Meyer','Svensson','Ali','Brown',
  'Wilson','Taylor','Anderson','Thomas','Moore','Martin','Jackson','White','Harris','Clark',
  'Lewis','Walker','Young','Allen','King','Wright','Scott','Green','Baker','Adams',
  'Nelson','Hill','Campbell','Mitchell','Roberts','Carter','Phillips','Evans','Turner','Torres',
  'Parker','Collins','Edwards','Stewart'
])[1 + pg_temp.pick(i, salt, 64)] $$;

CREATE FUNCTION pg_temp.company(i bigint, salt int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (ARRAY[
  'Northwind','Contoso','Globex','Initech','Umbrella','Hooli','Vandelay','Stark','Wayne','Acme',
  'Soylent','Cyberdyne','Tyrell','Wonka','Massive','Pied Piper','Aperture','Black Mesa',
  'Oceanic','Gringotts','Monarch','Dunder','Sterling','Prestige','Blue Sun','Veridian',
  'Nakatomi','Zorg','Oscorp','Virtucon','Gekko','Bluth'
])[1 + pg_temp.pick(i, salt, 32)] || ' ' || (ARRAY[
  'Labs','Systems','Group','Holdings','Analytics','Partners','Logistics','Health','Capital',
  'Media','Robotics','Foods','Energy','Software','Consulting','Retail'
])[1 + pg_temp.pick(i, salt + 1, 16)] $$;
