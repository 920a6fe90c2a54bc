-- Daily summaries, profiles, per-user timezones and the scheduler's lease (API.md §13.C, §13.D).

-- The IANA timezone a user's days are counted in.
ALTER TABLE users ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

-- At most one summary per user and user-local day; `body` is the whole summary as JSON.
-- `origin` is `generated` (by the scheduler or the command line) or `received`.
CREATE TABLE daily_summaries (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    date       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    origin     TEXT NOT NULL,
    body       TEXT NOT NULL
) STRICT;
-- Also the list order (date desc): one summary per date leaves no ties.
CREATE UNIQUE INDEX daily_summaries_by_user_date ON daily_summaries (user_id, date);

-- The last built profile, and the state of the memories it was built from.
CREATE TABLE user_profiles (
    user_id             TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    profile_text        TEXT NOT NULL,
    generated_at        INTEGER NOT NULL,
    data_sources_used   INTEGER NOT NULL,
    memory_count        INTEGER NOT NULL,
    memories_updated_at INTEGER
) STRICT;

-- Named leases: work that must run on one replica at a time holds one until `expires_at`.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- People: the segments spoken by a known person.
CREATE INDEX transcript_segments_by_person ON transcript_segments (user_id, person_id)
    WHERE person_id IS NOT NULL;
