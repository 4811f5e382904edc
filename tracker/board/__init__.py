"""newsdesk's own dashboard (`newsdesk ui`): a read-only web page over one store that shows
every run's curves live and at full fidelity, runs side by side, the classifier over its
evaluations and the registry. See docs/board.md."""
