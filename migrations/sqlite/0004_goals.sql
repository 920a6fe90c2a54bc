-- Goals. Ids are `goal_` + 12 random hex characters, unique per user. Values are decimals.
CREATE TABLE goals (
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    title         TEXT NOT NULL,
    goal_type     TEXT NOT NULL,
    target_value  REAL NOT NULL,
    current_value REAL NOT NULL,
    min_value     REAL NOT NULL,
    max_value     REAL NOT NULL,
    unit          TEXT,
    is_active     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT;

-- Active goals oldest first: the default list and the three-active rule.
CREATE INDEX goals_active_order ON goals (user_id, is_active, created_at, id);
-- All goals newest first (read backwards).
CREATE INDEX goals_list_order ON goals (user_id, created_at, id);

-- One value per goal per UTC day (`YYYY-MM-DD`), the last one recorded that day.
CREATE TABLE goal_history (
    user_id     TEXT NOT NULL,
    goal_id     TEXT NOT NULL,
    date        TEXT NOT NULL,
    value       REAL NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, goal_id, date),
    FOREIGN KEY (user_id, goal_id) REFERENCES goals (user_id, id) ON DELETE CASCADE
) STRICT;
