-- Daily summaries, profiles, per-user timezones and the scheduler's lease (API.md §13.C, §13.D).

-- The IANA timezone a user's days are counted in.
ALTER TABLE users ADD COLUMN timezone text NOT NULL DEFAULT 'UTC';

-- At most one summary per user and user-local day; `body` is the whole summary as JSON.
-- `origin` is `generated` (by the scheduler or the command line) or `received`.
CREATE TABLE daily_summaries (
    id         text PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    date       date NOT NULL,
    created_at timestamptz NOT NULL,
    origin     text NOT NULL,
    body       jsonb NOT NULL
);
-- Also the list order (date desc): one summary per date leaves no ties.
CREATE UNIQUE INDEX daily_summaries_by_user_date ON daily_summaries (user_id, date);

-- The last built profile, and the state of the memories it was built from.
CREATE TABLE user_profiles (
    user_id             text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    profile_text        text NOT NULL,
    generated_at        timestamptz NOT NULL,
    data_sources_used   bigint NOT NULL,
    memory_count        bigint NOT NULL,
    memories_updated_at timestamptz
);

-- Named leases: work that must run on one replica at a time holds one until `expires_at`.
CREATE TABLE leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- People: the segments spoken by a known person.
CREATE INDEX transcript_segments_by_person ON transcript_segments (user_id, person_id)
    WHERE person_id IS NOT NULL;
