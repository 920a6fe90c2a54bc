"""A scenario run with the client openapi-python-client generated from the served document
(scripts/clients.sh); checked with `mypy --strict` before it runs. Every step checks the answer;
any mismatch raises and fails the run."""

import datetime
import os
from typing import TypeVar

from omi_client import AuthenticatedClient
from omi_client.api.action_items import create_action_item, update_action_item
from omi_client.api.conversations import create_conversation_from_segments, get_conversation
from omi_client.api.goals import create_goal, get_goal_history, update_goal_progress
from omi_client.api.memories import create_memories_batch, create_memory, list_memories
from omi_client.models import (
    ActionItem,
    Conversation,
    CreateActionItem,
    CreatedConversation,
    CreateFromSegmentsRequest,
    CreateGoal,
    CreateMemoriesBatchRequest,
    CreateMemoryRequest,
    ErrorResponse,
    Goal,
    MemoriesBatchResponse,
    MemoryCategory,
    SegmentRequest,
    UpdateActionItemBody,
    Visibility,
)
from omi_client.types import Unset

T = TypeVar("T")


def expect(answer: object, kind: type[T], what: str) -> T:
    if not isinstance(answer, kind):
        raise AssertionError(f"{what}: expected {kind.__name__}, got {answer!r}")
    return answer


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"scenario failed: {what}")


def main() -> None:
    client = AuthenticatedClient(
        base_url=os.environ["OMI_BASE_URL"], token=os.environ["OMI_API_KEY"], raise_on_unexpected_status=True
    )

    # Memories: a batch of two, then the list holds both.
    batch = expect(
        create_memories_batch.sync(
            client=client,
            body=CreateMemoriesBatchRequest(
                memories=[
                    CreateMemoryRequest(content="The Python client keeps bees", category=MemoryCategory.SYSTEM, tags=["garden"]),
                    CreateMemoryRequest(content="The Python client prefers tea", visibility=Visibility.PUBLIC),
                ]
            ),
        ),
        MemoriesBatchResponse,
        "memories batch",
    )
    check(batch.created_count == 2 and len(batch.memories) == 2, "two memories created")
    listed = list_memories.sync(client=client, limit=100, categories="system")
    check(isinstance(listed, list), f"memories list: {listed!r}")
    assert isinstance(listed, list)
    check(any(memory.id == batch.memories[0].id for memory in listed), "the list holds the batch's memory")
    check(all(memory.conversation_id is None for memory in listed), "API memories have no conversation")

    # Action items: create one, then complete it.
    item = expect(
        create_action_item.sync(
            client=client, body=CreateActionItem(description="Send the Python report", due_at="2030-01-15")
        ),
        ActionItem,
        "action item create",
    )
    check(not item.completed and item.completed_at is None, "a new item is open")
    done = expect(
        update_action_item.sync(item.id, client=client, body=UpdateActionItemBody(completed=True)),
        ActionItem,
        "action item complete",
    )
    check(done.completed and isinstance(done.completed_at, datetime.datetime), "the completed item has completed_at")

    # A conversation from transcript segments, read back with its transcript.
    started = datetime.datetime(2030, 1, 10, 9, 0, tzinfo=datetime.timezone.utc)
    created = expect(
        create_conversation_from_segments.sync(
            client=client,
            body=CreateFromSegmentsRequest(
                transcript_segments=[
                    SegmentRequest(
                        text="I need to call the plumber about the kitchen sink tomorrow.",
                        speaker="SPEAKER_00",
                        is_user=True,
                        start=0.0,
                        end=4.5,
                    ),
                    SegmentRequest(
                        text="Sure, and remember to buy new tiles for the bathroom.", speaker="SPEAKER_01", start=4.5, end=9.0
                    ),
                ],
                started_at="2030-01-10T09:00:00Z",
            ),
        ),
        CreatedConversation,
        "conversation from segments",
    )
    conversation = expect(
        get_conversation.sync(created.id, client=client, include_transcript=True), Conversation, "conversation read"
    )
    check(conversation.id == created.id, "the conversation reads back")
    check(conversation.started_at == started, "started_at as sent")
    segments = conversation.transcript_segments
    check(isinstance(segments, list) and len(segments) == 2, "both segments read back")

    # A goal's history after a progress update.
    goal = expect(
        create_goal.sync(client=client, body=CreateGoal(title="Read 12 books", target_value=12.0, current_value=1.0)),
        Goal,
        "goal create",
    )
    expect(update_goal_progress.sync(goal.id, client=client, current_value=4.0), Goal, "goal progress")
    history = get_goal_history.sync(goal.id, client=client, days=7)
    check(isinstance(history, list) and len(history) == 1, f"goal history: {history!r}")
    assert isinstance(history, list)
    check(history[0].value == 4.0, "today's value is the last one recorded")

    # A refused request: 422 with its detail.
    refused = create_memory.sync_detailed(client=client, body=CreateMemoryRequest(content="   "))
    check(refused.status_code == 422, f"blank content is a 422 (got {refused.status_code})")
    error = expect(refused.parsed, ErrorResponse, "the 422's body")
    check(error.detail == "content cannot be empty", f"the 422 says why (got {error.detail!r})")
    check(not isinstance(error.detail, Unset), "detail is present")

    print("python client: scenario passed")


if __name__ == "__main__":
    main()
