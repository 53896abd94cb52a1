"""Training for the zoo (installed as `zoo.training`): datasets, tasks, callbacks."""
