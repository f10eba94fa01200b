"""Code shared by the recall, ranking and deploy modules of the search pipeline."""
