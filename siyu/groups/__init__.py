"""WeCom customer groups (客户群): membership kept current from WeCom's callbacks and group
API, so the journey's 入群 is real, and each group's activity."""
