# Writes INPUT as a NUL-terminated C array named NAME into OUTPUT, so a data file (the OpenAPI
# components) is compiled into the binary rather than looked up at run time.
file(READ ${INPUT} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUTPUT} "/* generated from ${INPUT}; do not edit */\nconst char ${NAME}[] = {${bytes}0x00};\n")
