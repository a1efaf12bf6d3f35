"""Admin for widgets, their rules, live preview, impressions and attribution."""
