-- Which backend made each part of a conversation's processing (structure, action items,
-- memories, discard), e.g. {"structure":"llm","action_items":"offline",...}. NULL for
-- conversations stored before it was recorded. Read by operators, not by the API.
ALTER TABLE conversations ADD COLUMN processing_parts jsonb;
