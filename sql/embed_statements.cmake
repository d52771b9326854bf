# Writes each named statement as {"name", R"(sql)"} for adapter/store/statements.cpp.
string(REPLACE "," ";" FILES "${FILES}")
set(body "")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME_WE)
  file(READ ${f} sql)
  string(APPEND body "{\"${name}\", R\"fra_sql(${sql})fra_sql\"},\n")
endforeach()
file(WRITE ${OUT} "${body}")
