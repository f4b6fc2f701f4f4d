"""Files shipped inside the package: the default site configuration and the workflows."""
