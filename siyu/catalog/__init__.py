"""The product catalogue: SKUs with their consumption cycle and the bundles they form."""
