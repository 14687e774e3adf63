"""From files to passages: decode bytes (`decode`), read each format (`readers`), clean
the text (`clean`), make an `Article` of a file (`corpus`), split it (`chunking`)."""
