"""Two-stage robust optimisation (Neur2RO's problems): instance generators and the exact CCG baseline."""
