"""RLHF with PPO: sample answers, score them with a reward model, classifier or function, and improve the policy
while a KL penalty keeps it near the base model."""
