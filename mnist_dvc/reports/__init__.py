"""Pictures: charts of metrics and curves, and grids of digit images."""
