// policy: the layered YAML policy. It owns reading policy files and (later) compiling and
// evaluating them; it produces decisions but never executes calls or writes audit records.
export { policyHealth } from "./files.js";
