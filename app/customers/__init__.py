"""What the IVR and the contact centre ask about one customer: is a known outage theirs?"""
