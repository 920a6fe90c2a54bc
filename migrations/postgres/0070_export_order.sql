-- The export reads each user's objects page by page in id order. Tables keyed by id alone get
-- a (user_id, id) index so that a page costs the same whatever other users hold.
CREATE INDEX folders_by_user_and_id ON folders (user_id, id);
CREATE INDEX conversations_by_user_and_id ON conversations (user_id, id);
CREATE INDEX action_items_by_user_and_id ON action_items (user_id, id);
CREATE INDEX daily_summaries_by_user_and_id ON daily_summaries (user_id, id);
