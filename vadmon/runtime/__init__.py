"""Process plumbing shared by every role: supervision, heartbeats, transport, messages, rings."""
