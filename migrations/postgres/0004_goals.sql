-- Goals. Ids are `goal_` + random hex characters, unique per user.
CREATE TABLE goals (
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id            text NOT NULL CHECK (id ~ '^goal_[0-9a-f]+$'),
    title         text NOT NULL,
    goal_type     text NOT NULL CHECK (goal_type IN ('boolean', 'scale', 'numeric')),
    target_value  double precision NOT NULL,
    current_value double precision NOT NULL,
    min_value     double precision NOT NULL,
    max_value     double precision NOT NULL,
    unit          text,
    is_active     boolean NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);

-- Active goals oldest first: the default list and the three-active rule.
CREATE INDEX goals_active_order ON goals (user_id, created_at, id) WHERE is_active;
-- All goals newest first (read backwards).
CREATE INDEX goals_list_order ON goals (user_id, created_at, id);

-- One value per goal per UTC day, the last one recorded that day.
CREATE TABLE goal_history (
    user_id     text NOT NULL,
    goal_id     text NOT NULL,
    date        date NOT NULL,
    value       double precision NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, goal_id, date),
    FOREIGN KEY (user_id, goal_id) REFERENCES goals (user_id, id) ON DELETE CASCADE
);
