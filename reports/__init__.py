"""The results model and what is made from it: HTML matrix, JUnit, Markdown, comparisons."""
