//! Schedule expressions: EventBridge `cron(...)`, `rate(...)` and the literal `delete`; next fire times.
