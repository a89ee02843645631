// The recovery vocabulary agents see in error data (schema/capability.schema.json), pinned as a
// literal for the tests that check errors against it: an outsider-visible list, never imported
// from src/.
export const RECOVERY_ACTIONS = [
  "retry",
  "retry_later",
  "fix_inputs",
  "reduce_scope",
  "increase_timeout",
  "check_path",
  "check_state",
  "use_other_capability",
  "request_approval",
  "wait_for_approval",
  "ask_operator",
];
