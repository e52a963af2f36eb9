//! `maxAge` durations, parsed as the reference parses them (aws-solution.md §2.11).
