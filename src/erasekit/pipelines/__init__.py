"""One pipeline per family: run the methods and the exact reference, audit them, return a typed report."""
