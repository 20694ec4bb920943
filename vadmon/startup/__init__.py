"""What must hold before any process starts: weights present, files there, URLs allowed."""
