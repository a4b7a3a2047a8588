"""What the NOC does to an outage and sees of it: acknowledgement, updates, resolution, the
kept promise of the next update, and the outage's detail with its notices."""
