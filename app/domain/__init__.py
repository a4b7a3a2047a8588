"""The vocabulary every part of Forewarn shares: places and their levels, customer contacts,
maintenance windows. Plain values only; it imports nothing of the rest of `app/`."""
