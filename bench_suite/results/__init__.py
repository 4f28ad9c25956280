"""Where results live and how they are shown: the store, frames, statistics, tables, figures."""
