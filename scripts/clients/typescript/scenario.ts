// A scenario run with the client generated from the served document (scripts/clients.sh):
// types from openapi-typescript (schema.d.ts), requests through openapi-fetch. Every step checks
// the answer; any mismatch throws and fails the run.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type ErrorResponse = components["schemas"]["ErrorResponse"];

const baseUrl = process.env.OMI_BASE_URL;
const apiKey = process.env.OMI_API_KEY;
if (!baseUrl || !apiKey) {
  throw new Error("OMI_BASE_URL and OMI_API_KEY must be set");
}
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });

function check(condition: boolean, what: string): asserts condition {
  if (!condition) {
    throw new Error(`scenario failed: ${what}`);
  }
}

function ok<T>(answer: { data?: T; error?: unknown; response: Response }, what: string): T {
  if (answer.data === undefined) {
    throw new Error(`${what}: HTTP ${answer.response.status} ${JSON.stringify(answer.error)}`);
  }
  return answer.data;
}

// Memories: a batch of two, then the list holds both.
const batch = ok(
  await client.POST("/v1/dev/user/memories/batch", {
    body: {
      memories: [
        { content: "The TypeScript client keeps bees", category: "system", tags: ["garden"] },
        { content: "The TypeScript client prefers tea", visibility: "public" },
      ],
    },
  }),
  "memories batch",
);
check(batch.created_count === 2 && batch.memories.length === 2, "two memories created");
const memories = ok(
  await client.GET("/v1/dev/user/memories", { params: { query: { limit: 100, categories: "system" } } }),
  "memories list",
);
const firstMemory = batch.memories[0];
check(firstMemory !== undefined, "batch answer holds the first memory");
check(memories.some((memory) => memory.id === firstMemory.id), "the list holds the batch's memory");
check(memories.every((memory) => memory.conversation_id === null), "API memories have no conversation");

// Action items: create one, then complete it.
const item = ok(
  await client.POST("/v1/dev/user/action-items", {
    body: { description: "Send the TypeScript report", due_at: "2030-01-15" },
  }),
  "action item create",
);
check(!item.completed && item.completed_at === null, "a new item is open");
const done = ok(
  await client.PATCH("/v1/dev/user/action-items/{action_item_id}", {
    params: { path: { action_item_id: item.id } },
    body: { completed: true },
  }),
  "action item complete",
);
check(done.completed && done.completed_at !== null, "the completed item has completed_at");

// A conversation from transcript segments, read back with its transcript.
const created = ok(
  await client.POST("/v1/dev/user/conversations/from-segments", {
    body: {
      transcript_segments: [
        { text: "I need to call the plumber about the kitchen sink tomorrow.", speaker: "SPEAKER_00", is_user: true, start: 0, end: 4.5 },
        { text: "Sure, and remember to buy new tiles for the bathroom.", speaker: "SPEAKER_01", start: 4.5, end: 9 },
      ],
      started_at: "2030-01-10T09:00:00Z",
    },
  }),
  "conversation from segments",
);
const conversation = ok(
  await client.GET("/v1/dev/user/conversations/{conversation_id}", {
    params: { path: { conversation_id: created.id }, query: { include_transcript: true } },
  }),
  "conversation read",
);
check(conversation.id === created.id, "the conversation reads back");
check(conversation.started_at === "2030-01-10T09:00:00Z", "started_at as sent");
check(conversation.transcript_segments?.length === 2, "both segments read back");

// A goal's history after a progress update.
const goal = ok(
  await client.POST("/v1/dev/user/goals", { body: { title: "Read 12 books", target_value: 12, current_value: 1 } }),
  "goal create",
);
ok(
  await client.PATCH("/v1/dev/user/goals/{goal_id}/progress", {
    params: { path: { goal_id: goal.id }, query: { current_value: 4 } },
  }),
  "goal progress",
);
const history = ok(
  await client.GET("/v1/dev/user/goals/{goal_id}/history", { params: { path: { goal_id: goal.id }, query: { days: 7 } } }),
  "goal history",
);
check(history.length === 1 && history[0]?.value === 4, "today's value is the last one recorded");

// A refused request: 422 with its detail.
const refused = await client.POST("/v1/dev/user/memories", { body: { content: "   " } });
check(refused.response.status === 422, `blank content is a 422 (got ${refused.response.status})`);
const detail: ErrorResponse["detail"] | undefined = refused.error?.detail;
check(detail === "content cannot be empty", `the 422 says why (got ${JSON.stringify(detail)})`);

console.log("typescript client: scenario passed");
