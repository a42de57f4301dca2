"""lamed on AWS: the Lambda zip, the desired resources, the plan that reconciles them, and its execution."""
