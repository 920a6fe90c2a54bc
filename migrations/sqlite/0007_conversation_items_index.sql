-- Only items extracted from a conversation have a conversation_id, and only they are ever looked
-- up by it. Indexing just those rows spares every API-created item (and every batch insert) the
-- upkeep of a seven-column index entry. `conversation_id = ?` in a query implies the index's
-- condition, so the planner still picks it.
DROP INDEX action_items_by_conversation;
CREATE INDEX action_items_by_conversation ON action_items
    (user_id, conversation_id, completed, due_at IS NULL, due_at, created_at DESC, id DESC)
    WHERE conversation_id IS NOT NULL;
