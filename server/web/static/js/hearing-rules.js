// The hearing lifecycle as the console offers it: the browser mirror of the transition table
// in server/hearings/states.py (docs/hearing-rules.md). The server enforces the table; the
// console only uses it to offer what can be done now (no 开庭 in a recess). A test
// (tests/web/test_hearing_rules_js.py) parses this list and fails if it drifts from Python.

const PRESIDING = ["judge", "clerk", "mediator"];
const RUNNERS = ["judge", "mediator"];

// [action, from, to, roles]
export const TRANSITIONS = Object.freeze([
  ["open", "scheduled", "opened", PRESIDING],
  ["cancel", "scheduled", "closed", RUNNERS],
  ["start", "opened", "in_session", RUNNERS],
  ["close", "opened", "closed", RUNNERS],
  ["recess", "in_session", "recess", RUNNERS],
  ["suspend", "in_session", "suspended", PRESIDING],
  ["close", "in_session", "closed", RUNNERS],
  ["resume", "recess", "in_session", RUNNERS],
  ["close", "recess", "closed", RUNNERS],
  ["resume", "suspended", "in_session", RUNNERS],
  ["close", "suspended", "closed", RUNNERS],
]);

// The transitions `role` may take from `state`: [{action, target}].
export function allowedTransitions(state, role) {
  return TRANSITIONS.filter(([, from, , roles]) => from === state && roles.includes(role))
    .map(([action, , target]) => ({ action, target }));
}

// Who moves people between the main room and private rooms (server/hearings/live.py).
export const ROOM_MOVERS = Object.freeze(["judge", "mediator"]);
// Called into the room and dismissed, never admitted (OLR 26).
export const CALLED_ROLES = Object.freeze(["witness", "expert"]);
