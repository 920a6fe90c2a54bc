-- Goals v2 (API.md §13.F): qualitative goals, a lifecycle status, where a goal came from, and an
-- optional metric (JSON) of which the old flat columns become a copy. Existing goals keep every
-- value: each gets a metric from its flat values (they all had a target), its title as the
-- desired outcome, status `background` when active and `abandoned` (ended when it was last
-- updated) when the three-active rule had deactivated it.
ALTER TABLE goals ADD COLUMN desired_outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE goals ADD COLUMN why_it_matters TEXT;
ALTER TABLE goals ADD COLUMN success_criteria TEXT NOT NULL DEFAULT '[]';
ALTER TABLE goals ADD COLUMN horizon_at INTEGER;
ALTER TABLE goals ADD COLUMN status TEXT NOT NULL DEFAULT 'background';
ALTER TABLE goals ADD COLUMN source TEXT NOT NULL DEFAULT 'user';
ALTER TABLE goals ADD COLUMN metric TEXT;
ALTER TABLE goals ADD COLUMN ended_at INTEGER;

UPDATE goals SET
    desired_outcome = title,
    metric = json_object('type', goal_type, 'current', current_value, 'target', target_value,
                         'min', min_value, 'max', max_value, 'unit', unit),
    status = CASE WHEN is_active = 1 THEN 'background' ELSE 'abandoned' END,
    ended_at = CASE WHEN is_active = 1 THEN NULL ELSE updated_at END;
