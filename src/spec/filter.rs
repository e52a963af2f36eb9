//! Personalize filter expressions: lexer, parser and syntax tree (personalize-api.md §6).
