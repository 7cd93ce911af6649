"""How answers are shown: rich tables, panels and trees for the terminal, and the HTML report."""
